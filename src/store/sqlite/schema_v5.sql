-- Version 5: what the dashboard reads, kept fast with millions of recipients and events.
--
-- Running counts, maintained by triggers in the same transaction as every recipient write (so
-- they are as durable and as consistent as the rows they count): the overview reads a few
-- hundred rows of these instead of aggregating every recipient. Feedback recipients (bounces
-- coming back to us) are not mail we sent and are not counted.
CREATE TABLE stats_state (
    state  TEXT NOT NULL,
    status TEXT NOT NULL,   -- last_status, '' for none
    n      INTEGER NOT NULL,
    PRIMARY KEY (state, status)
) WITHOUT ROWID;
CREATE TABLE stats_domain (
    domain TEXT NOT NULL,   -- lower-cased domain of the recipient address
    state  TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (domain, state)
) WITHOUT ROWID;
-- Final outcomes (delivered, bounced, expired) per UTC day of the recipient's last update.
CREATE TABLE stats_daily (
    day   INTEGER NOT NULL, -- updated_at / 86400000
    state TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (day, state)
) WITHOUT ROWID;

INSERT INTO stats_state
    SELECT state, coalesce(last_status, ''), count(*) FROM recipients WHERE transport <> 'feedback' GROUP BY 1, 2;
INSERT INTO stats_domain
    SELECT lower(substr(address, instr(address, '@') + 1)), state, count(*) FROM recipients
    WHERE transport <> 'feedback' GROUP BY 1, 2;
INSERT INTO stats_daily
    SELECT updated_at / 86400000, state, count(*) FROM recipients
    WHERE transport <> 'feedback' AND state IN ('delivered', 'bounced', 'expired') GROUP BY 1, 2;

CREATE TRIGGER recipients_stats_insert AFTER INSERT ON recipients WHEN NEW.transport <> 'feedback'
BEGIN
    INSERT INTO stats_state VALUES (NEW.state, coalesce(NEW.last_status, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
    INSERT INTO stats_domain VALUES (lower(substr(NEW.address, instr(NEW.address, '@') + 1)), NEW.state, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
    INSERT INTO stats_daily SELECT NEW.updated_at / 86400000, NEW.state, 1
        WHERE NEW.state IN ('delivered', 'bounced', 'expired')
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER recipients_stats_update AFTER UPDATE OF state, last_status, updated_at ON recipients
WHEN NEW.transport <> 'feedback' AND (OLD.state IS NOT NEW.state OR OLD.last_status IS NOT NEW.last_status
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

CREATE TRIGGER recipients_stats_delete AFTER DELETE ON recipients WHEN OLD.transport <> 'feedback'
BEGIN
    UPDATE stats_state SET n = n - 1 WHERE state = OLD.state AND status = coalesce(OLD.last_status, '');
    UPDATE stats_domain SET n = n - 1
        WHERE domain = lower(substr(OLD.address, instr(OLD.address, '@') + 1)) AND state = OLD.state;
    UPDATE stats_daily SET n = n - 1
        WHERE OLD.state IN ('delivered', 'bounced', 'expired') AND day = OLD.updated_at / 86400000 AND state = OLD.state;
END;

-- The queue page: recipients of one state, newest change first (a LIMIT stops the scan) ...
CREATE INDEX recipients_state_updated ON recipients (state, updated_at);
-- ... and of one state at one domain.
CREATE INDEX recipients_state_domain
    ON recipients (state, lower(substr(address, instr(address, '@') + 1)), updated_at);
