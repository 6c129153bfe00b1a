-- Version 17: the Message-ID header of each message (issue 17: events and a message's journey
-- carry `id` = the queue id and `message_id` = this header, like the send reply). Written by
-- accept for every door; NULL for messages stored before, and for a message without one.
ALTER TABLE messages ADD COLUMN message_id_header TEXT;
