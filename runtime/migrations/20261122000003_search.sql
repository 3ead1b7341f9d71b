-- Full-text search over messages. The 'simple' configuration (no stemming,
-- no stop words) because a coalition writes in many languages at once.
ALTER TABLE posts ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', message)) STORED;
CREATE INDEX posts_search ON posts USING gin (search);
