-- Agents and what the language model costs.

-- Agents are bot users: they post, are mentioned and messaged, and never
-- sign in (no password, no tokens).
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('system_admin', 'member', 'guest', 'remote', 'bot'));

-- A post that asks an agent, written in the same transaction as the post
-- (whatever its source), so no question is lost to a crash or a restart;
-- a server answers it once (claimed with SKIP LOCKED).
CREATE TABLE agent_requests (
    post_id    text PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
    agent      text NOT NULL,
    channel_id text NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    asker_id   text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    state      text NOT NULL DEFAULT 'queued'
               CHECK (state IN ('queued', 'answering', 'answered', 'failed')),
    attempts   integer NOT NULL DEFAULT 0,
    claimed_at timestamptz,
    answer_id  text,
    error      text
);
CREATE INDEX agent_requests_open ON agent_requests (created_at)
    WHERE state IN ('queued', 'answering');

-- Tokens spent, per day, user, model and purpose (agent, summary).
CREATE TABLE ai_usage (
    day               date NOT NULL,
    user_id           text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    model             text NOT NULL,
    purpose           text NOT NULL,
    requests          bigint NOT NULL DEFAULT 0,
    failed            bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_id, model, purpose)
);
