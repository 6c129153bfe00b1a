-- Version 19: the two writes every message goes through count their own changes to the running
-- counts (store/sqlite/counts.rs): an insert adds its new recipients, a record of attempts its
-- changes of state, with one upsert per changed count per group commit instead of three to six
-- statements per row in a trigger. The insert trigger goes; the update trigger stays for every
-- other change (hold, release, a bounce received) and now skips a change of `attempts`, which
-- only a record of an attempt makes. The delete trigger is unchanged.
DROP TRIGGER recipients_stats_insert;
DROP TRIGGER recipients_stats_update;
CREATE TRIGGER recipients_stats_update AFTER UPDATE OF state, last_status, updated_at ON recipients
WHEN NEW.transport <> 'feedback' AND NEW.attempts = OLD.attempts
    AND (OLD.state IS NOT NEW.state OR OLD.last_status IS NOT NEW.last_status
         OR (NEW.state IN ('delivered', 'bounced', 'expired') AND OLD.updated_at / 86400000 <> NEW.updated_at / 86400000))
BEGIN
    UPDATE stats_state SET n = n - 1 WHERE state = OLD.state AND status = coalesce(OLD.last_status, '');
    INSERT INTO stats_state VALUES (NEW.state, coalesce(NEW.last_status, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
    UPDATE stats_domain SET n = n - 1
        WHERE domain = lower(substr(OLD.address, instr(OLD.address, '@') + 1)) AND state = OLD.state;
    INSERT INTO stats_domain VALUES (lower(substr(NEW.address, instr(NEW.address, '@') + 1)), NEW.state, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
    UPDATE stats_daily SET n = n - 1
        WHERE OLD.state IN ('delivered', 'bounced', 'expired') AND day = OLD.updated_at / 86400000 AND state = OLD.state;
    INSERT INTO stats_daily SELECT NEW.updated_at / 86400000, NEW.state, 1
        WHERE NEW.state IN ('delivered', 'bounced', 'expired')
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
