-- Guests, attribute-based access (AccessPolicy) and the audit log.

-- Labels an AccessPolicy's channelSelector matches (classification, mission, …).
ALTER TABLE channels ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof(labels) = 'object');

-- Guests: the GuestPolicy an account came in under, when its access ends,
-- and when the server ended it (the account stays, for the record).
ALTER TABLE users ADD COLUMN guest_policy text;
ALTER TABLE users ADD COLUMN access_expires_at timestamptz;
ALTER TABLE users ADD COLUMN expired_at timestamptz;

-- Single-use guest invitations. Only a hash of the token is kept.
CREATE TABLE invitations (
    id           text PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    policy       text NOT NULL,
    email        text NOT NULL,
    organisation text,
    invited_by   text NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    redeemed_at  timestamptz,
    redeemed_by  text REFERENCES users (id)
);
CREATE INDEX invitations_policy ON invitations (policy) WHERE redeemed_at IS NULL;

-- Access decisions that changed something, policy changes, guest lifecycle.
-- No foreign keys: the record outlives what it names.
CREATE TABLE audit_log (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL,
    -- Who caused it; NULL when the server did (a policy sweep, an expiry).
    actor_id   text,
    -- Whom and what it concerns.
    user_id    text,
    channel_id text,
    policy     text,
    reason     text NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_user ON audit_log (user_id, seq);
CREATE INDEX audit_log_policy ON audit_log (policy, seq);
CREATE INDEX audit_log_kind ON audit_log (kind, seq);

-- Append-only, also for the server's own database role.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- The access policies last in effect, so each change is audited once,
-- whichever replica sees it first and across restarts.
CREATE TABLE access_policies_seen (
    name       text PRIMARY KEY,
    definition jsonb NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- Would-be denials of audit-mode policies already recorded: each is
-- recorded once, and again only after the user matched in between.
CREATE TABLE access_findings (
    policy     text NOT NULL,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id text NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (policy, user_id, channel_id)
);
