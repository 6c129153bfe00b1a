-- Version 9: a recipient's destination in typed columns (issue 15; SQLite's version 7).
-- `mailbox` used to carry three things: a local mailbox key or an alias's forward target (as
-- now), `QUEUEID:RID` for a bounce to one of our signed return paths, and `local:KEY` for
-- null-sender mail to a local mailbox. The bounce's message and recipient get columns of
-- their own (no recipient: NULL, where the token said 0), and `mailbox` keeps only a key or
-- a target.
ALTER TABLE recipients ADD COLUMN bounce_message TEXT, ADD COLUMN bounce_recipient BIGINT;
UPDATE recipients
    SET bounce_message = split_part(mailbox, ':', 1),
        bounce_recipient = CASE WHEN split_part(mailbox, ':', 2) ~ '^[0-9]{1,18}$'
                                THEN nullif(split_part(mailbox, ':', 2)::bigint, 0) END,
        mailbox = NULL
    WHERE transport = 'feedback' AND mailbox IS NOT NULL AND NOT starts_with(mailbox, 'local:');
UPDATE recipients SET mailbox = substr(mailbox, 7)
    WHERE transport = 'feedback' AND starts_with(mailbox, 'local:');
