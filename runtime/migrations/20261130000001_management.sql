-- A channel's header: a line shown above its posts (links, the on-call rota).
ALTER TABLE channels ADD COLUMN header text NOT NULL DEFAULT '';
-- Finding people by name: the directory reads users in username order.
CREATE INDEX users_username_order ON users (lower(username) text_pattern_ops);
