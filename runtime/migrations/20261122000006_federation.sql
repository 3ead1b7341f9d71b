-- Federation: partner users, global post ids, the per-partner outbox, and
-- what has been applied from each partner.

-- Users of partner workspaces: profiles shown with their organisation.
-- They have no password and no tokens; they never sign in here.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('system_admin', 'member', 'guest', 'remote'));
ALTER TABLE users ADD COLUMN origin text;
ALTER TABLE users ADD COLUMN organisation text;
ALTER TABLE users ADD CONSTRAINT users_remote_have_origin
    CHECK ((role = 'remote') = (origin IS NOT NULL));
ALTER TABLE users ADD CONSTRAINT users_remote_cannot_sign_in
    CHECK (origin IS NULL OR password_hash IS NULL);

-- Where a post was written (NULL: here), and the (time, origin) of the edit
-- its text comes from: the last writer wins by that pair on every side.
ALTER TABLE posts ADD COLUMN origin text;
ALTER TABLE posts ADD COLUMN edit_origin text;

-- Events waiting for a partner's acknowledgement. Rows go once acknowledged.
CREATE TABLE federation_outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner    text NOT NULL,
    event_id   text NOT NULL,
    -- entente.federation.v1.Event, protobuf-encoded.
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX federation_outbox_partner ON federation_outbox (partner, seq);

-- Per partner: how far it acknowledged our outbox, how far we applied its
-- pushes, and when we last heard from it.
CREATE TABLE federation_peers (
    partner      text PRIMARY KEY,
    acked_seq    bigint NOT NULL DEFAULT 0,
    applied_seq  bigint NOT NULL DEFAULT 0,
    last_contact timestamptz,
    last_error   text
);

-- Events applied, by origin and id: each takes effect once, whichever way
-- it came (a live push, a relay, an offline bundle).
CREATE TABLE federation_applied (
    origin     text NOT NULL,
    event_id   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, event_id)
);
