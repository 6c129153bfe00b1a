-- Version 4: the dashboard's queue page on PostgreSQL: recipients of one state, newest change
-- first, overall or at one domain (a LIMIT stops the index scan). The overview aggregates with
-- plain GROUP BYs: running-count rows kept by triggers, as on SQLite, would be updated by every
-- insert of every node and serialize the cluster's commits on their row locks.
CREATE INDEX recipients_state_updated ON recipients (state, updated_at);
CREATE INDEX recipients_state_domain
    ON recipients (state, lower(substr(address, strpos(address, '@') + 1)), updated_at);
