-- Accounts, channels, posts: the core every later feature extends.
-- Ids are ULIDs as text: globally unique and time-ordered, so federation can
-- use them as they are (origin + ULID).

CREATE TABLE users (
    id            text PRIMARY KEY,
    username      text NOT NULL,
    email         text,
    display_name  text NOT NULL DEFAULT '',
    -- argon2id PHC string; NULL for accounts that cannot log in with a password.
    password_hash text,
    role          text NOT NULL CHECK (role IN ('system_admin', 'member', 'guest')),
    -- nation, organisation, clearance, …: read by access policies.
    attributes    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attributes) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    deactivated_at timestamptz
);
CREATE UNIQUE INDEX users_username ON users (lower(username));
CREATE UNIQUE INDEX users_email ON users (lower(email)) WHERE email IS NOT NULL;

-- Login sessions and personal access tokens. Only a hash of the token is kept,
-- so a database dump does not hand out sessions.
CREATE TABLE tokens (
    id           text PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('session', 'personal')),
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE channels (
    id           text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('public', 'private', 'direct', 'group')),
    -- Named channels have a unique name; direct and group messages have none.
    name         text,
    display_name text NOT NULL DEFAULT '',
    purpose      text NOT NULL DEFAULT '',
    -- Direct messages: the two user ids, sorted and joined, so a pair has one channel.
    direct_key   text UNIQUE,
    created_by   text REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    archived_at  timestamptz,
    CHECK ((kind IN ('public', 'private')) = (name IS NOT NULL)),
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
);
CREATE UNIQUE INDEX channels_name ON channels (lower(name)) WHERE name IS NOT NULL;

CREATE TABLE channel_members (
    channel_id    text NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    joined_at     timestamptz NOT NULL DEFAULT now(),
    -- Read marker: the sequence number of the last post this member has seen.
    last_read_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user ON channel_members (user_id);

CREATE TABLE posts (
    id          text PRIMARY KEY,
    -- Position in the workspace's history: cursors and read markers compare it.
    seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    channel_id  text NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id     text NOT NULL REFERENCES users (id),
    -- Thread replies point at the thread's first post.
    root_id     text REFERENCES posts (id),
    message     text NOT NULL,
    pinned      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    edited_at   timestamptz,
    deleted_at  timestamptz
);
CREATE INDEX posts_channel_seq ON posts (channel_id, seq);
CREATE INDEX posts_root ON posts (root_id, seq) WHERE root_id IS NOT NULL;

-- Every earlier text of an edited post.
CREATE TABLE post_edits (
    post_id    text NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    message    text NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now(),
    editor_id  text NOT NULL REFERENCES users (id)
);
CREATE INDEX post_edits_post ON post_edits (post_id, replaced_at);

CREATE TABLE reactions (
    post_id    text NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id),
    emoji      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id, emoji)
);

-- Who a post mentions (directly or through @channel), for mention counts.
CREATE TABLE mentions (
    post_id text NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX mentions_user ON mentions (user_id);
