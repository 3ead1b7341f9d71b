-- Translation of posts into their readers' languages.

-- The language a person reads and writes (BCP 47: en, es, …); NULL: the
-- workspace's default.
ALTER TABLE users ADD COLUMN language text;
-- A channel admin turns translation on for a channel.
ALTER TABLE channels ADD COLUMN translation boolean NOT NULL DEFAULT false;
-- A member may opt out of it in one channel.
ALTER TABLE channel_members ADD COLUMN translate boolean NOT NULL DEFAULT true;

-- A post to translate into a language, queued in the transaction that
-- wrote (or edited) the post, so none is lost; claimed with SKIP LOCKED.
CREATE TABLE translation_jobs (
    post_id    text NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    language   text NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    attempts   integer NOT NULL DEFAULT 0,
    claimed_at timestamptz,
    PRIMARY KEY (post_id, language)
);
CREATE INDEX translation_jobs_queue ON translation_jobs (queued_at);

-- One translation per post and language, read by every reader and replica.
-- `text` is NULL when the provider could not translate it (`problem` says why).
CREATE TABLE post_translations (
    post_id    text NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    language   text NOT NULL,
    source     text NOT NULL,
    provider   text NOT NULL,
    text       text,
    problem    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, language)
);
