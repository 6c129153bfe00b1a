-- Version 7: a recipient's destination in typed columns (issue 15). `mailbox` used to carry
-- three things: a local mailbox key or an alias's forward target (as now), `QUEUEID:RID` for
-- a bounce to one of our signed return paths, and `local:KEY` for null-sender mail to a local
-- mailbox. The bounce's message and recipient get columns of their own (no recipient: NULL,
-- where the token said 0), and `mailbox` keeps only a key or a target.
ALTER TABLE recipients ADD COLUMN bounce_message TEXT;
ALTER TABLE recipients ADD COLUMN bounce_recipient INTEGER;
UPDATE recipients
    SET bounce_message = CASE WHEN instr(mailbox, ':') > 0 THEN substr(mailbox, 1, instr(mailbox, ':') - 1)
                              ELSE mailbox END,
        bounce_recipient = CASE WHEN instr(mailbox, ':') > 0
                                THEN nullif(CAST(substr(mailbox, instr(mailbox, ':') + 1) AS INTEGER), 0) END,
        mailbox = NULL
    WHERE transport = 'feedback' AND mailbox IS NOT NULL AND substr(mailbox, 1, 6) <> 'local:';
UPDATE recipients SET mailbox = substr(mailbox, 7)
    WHERE transport = 'feedback' AND substr(mailbox, 1, 6) = 'local:';
