-- Version 19: new recipients are counted into the running counts by the writer, once per
-- group commit (one upsert of stats_state and one of stats_domain per domain), instead of by a
-- trigger that ran three upserts for every inserted row. New rows are always queued without a
-- status, so nothing else of the trigger is lost; the update and delete triggers stay.
DROP TRIGGER recipients_stats_insert;
