-- Live events: every change a client should hear about, written in the same
-- transaction as the change. The sequence is the cursor a reconnecting client
-- resumes from; writers take an advisory lock before inserting so sequence
-- numbers become visible in order (a reader never sees 11 before 10 commits).

CREATE TABLE events (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL,
    -- The channel the event concerns; members receive it.
    channel_id text REFERENCES channels (id) ON DELETE CASCADE,
    -- A user who receives it even when not (or no longer) a member, e.g. the
    -- person just removed from a channel.
    user_id    text REFERENCES users (id) ON DELETE CASCADE,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_channel ON events (channel_id, seq);
