-- Version 7: no foreign key from recipients to messages. A message and its recipients are
-- written by one statement and deleted by one transaction (recipients first), so the key
-- guarded nothing our code can do, while it cost every recipient insert a lookup and a row
-- lock on its message (an extra WAL record each).
ALTER TABLE recipients DROP CONSTRAINT IF EXISTS recipients_message_id_fkey;
