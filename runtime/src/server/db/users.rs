//! Writes of `users`: local accounts (members, admins, guests), partners'
//! users as their workspaces describe them, attributes and guest expiry.

use super::{inserted, Result};

/// SQL: the user `u` may act (not deactivated, not a guest whose access
/// ended, not a partner's user, who acts only at their own workspace).
macro_rules! active_user {
    () => {
        "u.deactivated_at IS NULL AND u.expired_at IS NULL AND u.origin IS NULL
           AND (u.access_expires_at IS NULL OR u.access_expires_at > now())"
    };
}
pub(crate) use active_user;

/// A local account to create.
pub struct NewUser<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    /// `system_admin`, `member` or `guest`.
    pub role: &'a str,
    pub attributes: serde_json::Value,
    /// For a guest: the GuestPolicy it came in under, and when access ends.
    pub guest_policy: Option<&'a str>,
    pub access_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Creates a local account; `false` if its username or email is taken.
pub async fn insert<'e>(db: impl sqlx::PgExecutor<'e>, user: NewUser<'_>) -> Result<bool> {
    inserted(
        sqlx::query!(
            "INSERT INTO users (id, username, email, display_name, password_hash, role, attributes,
                                guest_policy, access_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            user.id,
            user.username,
            user.email,
            user.display_name,
            user.password_hash,
            user.role,
            user.attributes,
            user.guest_policy,
            user.access_expires_at
        )
        .execute(db)
        .await,
    )
}

/// Creates the bootstrap admin unless a user of that name exists (whose
/// password is then left alone: it may have been changed). Whether it was created.
pub async fn insert_admin_once<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    username: &str,
    email: Option<&str>,
    password_hash: &str,
) -> Result<bool> {
    let result = sqlx::query!(
        "INSERT INTO users (id, username, email, display_name, password_hash, role)
         VALUES ($1, $2, $3, $2, $4, 'system_admin')
         ON CONFLICT (lower(username)) DO NOTHING",
        id,
        username,
        email,
        password_hash
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A partner's user as its workspace describes them.
pub struct RemoteUser<'a> {
    pub id: &'a str,
    /// Their username at their workspace (stored as `username@origin`).
    pub username: &'a str,
    pub display_name: &'a str,
    pub origin: &'a str,
    pub organisation: &'a str,
    pub guest: bool,
}

/// Creates or refreshes a partner's user; `false` if the id is already
/// someone else's (a local user's, or another origin's).
pub async fn upsert_remote<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user: RemoteUser<'_>,
) -> Result<bool> {
    let row = sqlx::query_scalar!(
        "INSERT INTO users (id, username, display_name, role, origin, organisation, attributes)
         VALUES ($1, $2 || '@' || $4, $3, 'remote', $4, $5, jsonb_build_object('guest', $6::boolean))
         ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name,
             organisation = EXCLUDED.organisation, attributes = EXCLUDED.attributes
             WHERE users.origin = EXCLUDED.origin
         RETURNING origin",
        user.id,
        user.username,
        user.display_name,
        user.origin,
        user.organisation,
        user.guest
    )
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// Creates an agent's bot user, or renames the one that exists; its id,
/// or `None` when a person already has the username.
pub async fn upsert_bot<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    username: &str,
    display_name: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO users (id, username, display_name, role, attributes)
         VALUES ($1, $2, $3, 'bot', '{}'::jsonb)
         ON CONFLICT ((lower(username))) DO UPDATE SET display_name = EXCLUDED.display_name
             WHERE users.role = 'bot'
         RETURNING id",
        id,
        username,
        display_name
    )
    .fetch_optional(db)
    .await?)
}

/// Creates an account whose owner signs in through an identity provider
/// (no password); `false` if the username or the email is taken.
pub async fn insert_external<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    username: &str,
    email: Option<&str>,
    display_name: &str,
    role: &str,
) -> Result<bool> {
    let row = sqlx::query_scalar!(
        "INSERT INTO users (id, username, email, display_name, role, attributes)
         VALUES ($1, $2, $3, $4, $5, '{}'::jsonb)
         ON CONFLICT DO NOTHING RETURNING id",
        id,
        username,
        email,
        display_name,
        role
    )
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// What the identity provider says of a user now: their name, their email
/// (kept as it was if another account has it) and their role.
pub async fn set_profile<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    display_name: &str,
    email: Option<&str>,
    role: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE users SET display_name = $2, role = $4,
             email = CASE WHEN $3::text IS NULL OR EXISTS (
                 SELECT 1 FROM users o WHERE lower(o.email) = lower($3) AND o.id <> $1)
               THEN email ELSE $3 END
         WHERE id = $1",
        user_id,
        display_name,
        email,
        role
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Replaces a user's attributes.
pub async fn set_attributes<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    attributes: &serde_json::Value,
) -> Result<()> {
    sqlx::query!(
        "UPDATE users SET attributes = $2 WHERE id = $1",
        user_id,
        attributes
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Marks a guest's access as ended; `false` if it already was (another
/// replica got there first).
pub async fn expire<'e>(db: impl sqlx::PgExecutor<'e>, user_id: &str) -> Result<bool> {
    let ended = sqlx::query!(
        "UPDATE users SET expired_at = now() WHERE id = $1 AND expired_at IS NULL",
        user_id
    )
    .execute(db)
    .await?;
    Ok(ended.rows_affected() == 1)
}

/// The name a user is shown by, if the user exists.
pub async fn display_name(db: &sqlx::PgPool, user_id: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar!("SELECT display_name FROM users WHERE id = $1", user_id)
            .fetch_optional(db)
            .await?,
    )
}

/// Replaces a local user's password hash.
pub async fn set_password<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    hash: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1 AND origin IS NULL AND role <> 'bot'",
        user_id,
        hash
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deactivates (`true`) or reactivates a local user; `false` if it already
/// was so.
pub async fn set_deactivated<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    deactivated: bool,
) -> Result<bool> {
    let changed = sqlx::query!(
        "UPDATE users SET deactivated_at = CASE WHEN $2 THEN now() END
         WHERE id = $1 AND origin IS NULL AND (deactivated_at IS NULL) = $2",
        user_id,
        deactivated
    )
    .execute(db)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// The language a local user reads and writes; `None`: the workspace's default.
pub async fn set_language<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    language: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE users SET language = $2 WHERE id = $1 AND origin IS NULL",
        user_id,
        language
    )
    .execute(db)
    .await?;
    Ok(())
}
