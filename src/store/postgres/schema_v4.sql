-- Version 4: the dashboard's queue page on PostgreSQL: recipients of one state, newest change
-- first, overall or at one domain (a LIMIT stops the index scan). Only final states are
-- indexed here: a queued or deferred row changes with every claim and retry, and an entry in
-- these indexes would cost every insert and every claim two more index writes; the active
-- states are searched through the due index (the queue's working set) and sorted. The
-- overview aggregates with plain GROUP BYs: running-count rows kept by triggers, as on SQLite,
-- would be updated by every insert of every node and serialize the cluster's commits on their
-- row locks.
CREATE INDEX recipients_final_updated ON recipients (state, updated_at)
    WHERE state NOT IN ('queued', 'deferred');
CREATE INDEX recipients_final_domain
    ON recipients (state, lower(substr(address, strpos(address, '@') + 1)), updated_at)
    WHERE state NOT IN ('queued', 'deferred');
