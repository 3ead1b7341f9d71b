-- Single sign-on. Who a user is at their identity provider: the provider's
-- stable key for them (for Entra ID the tenant and object id, for any other
-- OpenID provider the issuer and subject), never an email address or a
-- display name, which change and can be reused.
CREATE TABLE user_identities (
    provider   text NOT NULL,
    subject    text NOT NULL,
    user_id    text NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);

-- A sign-in under way: what the callback must find again. Taken once (a
-- replayed callback finds nothing) and good for ten minutes.
CREATE TABLE sso_flows (
    state      text PRIMARY KEY,
    nonce      text NOT NULL,
    verifier   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
