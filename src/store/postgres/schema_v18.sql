-- Version 18: complaints counted by time (issue 18, SQLite's version 16: the dashboard's and
-- `check domain`'s complaint rate). A partial index: only `complained` events are in it, so the
-- writes of every other event cost nothing more.
CREATE INDEX events_complained ON events (at) WHERE kind = 'complained';
