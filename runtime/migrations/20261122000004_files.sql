-- Uploaded files. The bytes live in the object store under object_key; a file
-- belongs to the channel it was uploaded to, and once attached, to a post.
CREATE TABLE files (
    id           text PRIMARY KEY,
    channel_id   text NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    uploader_id  text NOT NULL REFERENCES users (id),
    post_id      text REFERENCES posts (id) ON DELETE CASCADE,
    name         text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    object_key   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_post ON files (post_id) WHERE post_id IS NOT NULL;
