-- Version 5: indexes for the dashboard's aggregates, so its pages stay fast with millions of
-- recipients and events (every dashboard query is an index range scan, never a table scan).
-- Counts by state and status (overview cards, bounces by reason): covering.
CREATE INDEX recipients_state_status ON recipients (state, last_status);
-- Outcomes per day (chart) and the queue page filtered by state, newest change first.
CREATE INDEX recipients_state_updated ON recipients (state, updated_at);
-- Failing domains and the queue page filtered by state and domain.
CREATE INDEX recipients_state_domain ON recipients (state, lower(substr(address, instr(address, '@') + 1)), updated_at);
