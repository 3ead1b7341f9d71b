-- Calls: at most one per channel at a time, held on one SFU node from start
-- to end, and who is in it.
CREATE TABLE calls (
    id         text PRIMARY KEY,
    channel_id text NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- The SFU node's signalling URL: every participant joins there.
    node       text NOT NULL,
    started_by text NOT NULL REFERENCES users (id),
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);
CREATE UNIQUE INDEX calls_one_per_channel ON calls (channel_id) WHERE ended_at IS NULL;

CREATE TABLE call_participants (
    call_id   text NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    user_id   text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at timestamptz NOT NULL DEFAULT now(),
    left_at   timestamptz,
    PRIMARY KEY (call_id, user_id)
);
