-- Version 20: the queue page's two indexes leave queued recipients out, as PostgreSQL's have
-- since its version 4. Every accepted recipient is queued, so each entry cost every accept two
-- more B-trees to write (and every first attempt two more to delete from); a queued recipient
-- is found through the due index instead, which holds exactly the queued and deferred ones.
-- Deferred recipients stay in: a provider outage leaves millions of them, and the page lists
-- them by domain.
DROP INDEX recipients_state_updated;
DROP INDEX recipients_state_domain;
CREATE INDEX recipients_state_updated ON recipients (state, updated_at) WHERE state <> 'queued';
CREATE INDEX recipients_state_domain
    ON recipients (state, lower(substr(address, instr(address, '@') + 1)), updated_at)
    WHERE state <> 'queued';
