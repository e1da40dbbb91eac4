-- SPDX-License-Identifier: Apache-2.0
-- 004: recording a rejected message is idempotent, like inserting readings. After a crash the spool
-- replays every record past its last persisted checkpoint; a rejection recorded just before the crash must
-- not be recorded twice. (origin, origin_seq) names the spool record: origin is the bridge's MQTT client id,
-- origin_seq the record's sequence in that bridge's spool (NULL in memory mode).
ALTER TABLE rejected_messages ADD COLUMN origin text, ADD COLUMN origin_seq bigint;
CREATE UNIQUE INDEX rejected_messages_origin_idx ON rejected_messages (origin, origin_seq);
-- ON CONFLICT needs SELECT on the arbiter's columns; these two reveal nothing about the messages.
GRANT SELECT (origin, origin_seq) ON rejected_messages TO mqtt2pg_writer;
