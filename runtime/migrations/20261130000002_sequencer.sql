-- Events are numbered after they commit, not while their transaction holds
-- a lock: a writer inserts its event without `seq`, and one sequencer (per
-- database) numbers committed events in its own transactions, one after
-- another. Until numbered, an event is invisible to readers (`seq > cursor`
-- is never true for NULL). Why this is right: runtime/src/server/events.rs.
ALTER TABLE events RENAME COLUMN seq TO id;
ALTER TABLE events ADD COLUMN seq bigint;
UPDATE events SET seq = id;
CREATE UNIQUE INDEX events_seq ON events (seq);
-- What the sequencer reads: the events not numbered yet.
CREATE INDEX events_unsequenced ON events (id) WHERE seq IS NULL;
DROP INDEX events_channel;
CREATE INDEX events_channel ON events (channel_id, seq);
