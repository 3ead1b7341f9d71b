-- Files over federation. A partner's post arrives with references to its
-- files; their bytes follow, fetched from the partner that sent the post in
-- chunks that are kept here until the file is whole, so a transfer cut
-- short resumes where it stopped, across restarts and replicas.

-- SHA-256 of the bytes, checked by whoever receives the file.
ALTER TABLE files ADD COLUMN sha256 bytea;
-- Where the file was uploaded (NULL: here).
ALTER TABLE files ADD COLUMN origin text;
-- The partner its bytes come from (NULL: they are in our object store).
ALTER TABLE files ADD COLUMN source text;
-- ready: downloadable; pending: its bytes are on their way; refused: they
-- will never come here (over the size limit, a bad checksum), and why.
ALTER TABLE files ADD COLUMN state text NOT NULL DEFAULT 'ready'
    CHECK (state IN ('ready', 'pending', 'refused'));
ALTER TABLE files ADD COLUMN refused_reason text;
ALTER TABLE files ADD CONSTRAINT files_remote_have_a_source
    CHECK (state = 'ready' OR source IS NOT NULL);
CREATE INDEX files_pending ON files (source, created_at, id) WHERE state = 'pending';

-- The chunks of a pending file received so far, by their first byte.
CREATE TABLE federation_file_parts (
    file_id text NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    at_byte bigint NOT NULL CHECK (at_byte >= 0),
    data    bytea NOT NULL,
    PRIMARY KEY (file_id, at_byte)
);
