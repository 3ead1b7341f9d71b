//! Writes of `tokens`: login sessions and personal access tokens, stored
//! as hashes of the bearer tokens handed out.

use chrono::{DateTime, Utc};

use super::Result;

/// A new token: `kind` is `session` (expires) or `personal` (named, no expiry).
pub struct NewToken<'a> {
    pub id: &'a str,
    pub hash: &'a [u8],
    pub user_id: &'a str,
    pub kind: &'a str,
    pub name: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert<'e>(db: impl sqlx::PgExecutor<'e>, token: NewToken<'_>) -> Result<()> {
    sqlx::query!(
        "INSERT INTO tokens (id, token_hash, user_id, kind, name, expires_at)
         VALUES ($1, $2, $3, $4, COALESCE($5, ''), $6)",
        token.id,
        token.hash,
        token.user_id,
        token.kind,
        token.name,
        token.expires_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A live token: its id, its user's id, role, attributes and guest policy,
/// and when it stops being valid (the earlier of the token's expiry and
/// the end of a guest's access), if ever.
pub type Found = (
    String,
    String,
    String,
    serde_json::Value,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// The token with `hash`, if valid, unexpired, unrevoked and its user may
/// act; returns the token's id and the user's id, role, attributes and
/// guest policy. A read: when it was last used is recorded apart
/// ([`mark_used`]), off the request's path. Not `query!`: the statement
/// joins the one definition of an active user (`users::active_user!`) with
/// `concat!`, which `query!` does not take.
pub async fn find<'e>(db: impl sqlx::PgExecutor<'e>, hash: &[u8]) -> Result<Option<Found>> {
    Ok(sqlx::query_as(concat!(
        "SELECT t.id, u.id, u.role, u.attributes, u.guest_policy,
                LEAST(t.expires_at, u.access_expires_at)
         FROM tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1
           AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
           AND ",
        super::users::active_user!()
    ))
    .bind(hash)
    .fetch_optional(db)
    .await?)
}

/// Records when each of `tokens` was last used, in one statement (never
/// moving a time back).
pub async fn mark_used<'e>(
    db: impl sqlx::PgExecutor<'e>,
    ids: &[String],
    at: &[DateTime<Utc>],
) -> Result<()> {
    sqlx::query!(
        "UPDATE tokens t SET last_used_at = u.at
         FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
         WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)",
        ids,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes one token, whatever its kind.
pub async fn revoke<'e>(db: impl sqlx::PgExecutor<'e>, token_id: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE tokens SET revoked_at = now() WHERE id = $1",
        token_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes one of `user_id`'s personal tokens; `false` if there is no such live token.
pub async fn revoke_personal<'e>(
    db: impl sqlx::PgExecutor<'e>,
    token_id: &str,
    user_id: &str,
) -> Result<bool> {
    let revoked = sqlx::query!(
        "UPDATE tokens SET revoked_at = now()
         WHERE id = $1 AND user_id = $2 AND kind = 'personal' AND revoked_at IS NULL",
        token_id,
        user_id
    )
    .execute(db)
    .await?;
    Ok(revoked.rows_affected() == 1)
}

/// Revokes every live token of a user (their access ended).
pub async fn revoke_all<'e>(db: impl sqlx::PgExecutor<'e>, user_id: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A personal access token as its owner sees it (never the token itself).
#[derive(serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `user_id`'s personal access tokens not revoked, oldest first.
pub async fn personal(db: &sqlx::PgPool, user_id: &str) -> Result<Vec<TokenInfo>> {
    // `name!`: personal tokens always have one (only sessions have none).
    Ok(sqlx::query_as!(
        TokenInfo,
        r#"SELECT id, name AS "name!", created_at, last_used_at FROM tokens
         WHERE user_id = $1 AND kind = 'personal' AND revoked_at IS NULL ORDER BY created_at"#,
        user_id
    )
    .fetch_all(db)
    .await?)
}

/// Revokes `user_id`'s login sessions but `keep` (their other devices, after
/// a password change); personal access tokens stay.
pub async fn revoke_sessions_but<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    keep: &str,
) -> Result<u64> {
    let revoked = sqlx::query!(
        "UPDATE tokens SET revoked_at = now()
         WHERE user_id = $1 AND kind = 'session' AND id <> $2 AND revoked_at IS NULL",
        user_id,
        keep
    )
    .execute(db)
    .await?;
    Ok(revoked.rows_affected())
}

/// Whether a token still stands: not revoked or expired, its user active.
pub async fn live(db: &sqlx::PgPool, token_id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM tokens t JOIN users u ON u.id = t.user_id
                          WHERE t.id = $1 AND t.revoked_at IS NULL
                            AND (t.expires_at IS NULL OR t.expires_at > now())
                            AND u.deactivated_at IS NULL AND u.expired_at IS NULL) AS "live!""#,
        token_id
    )
    .fetch_one(db)
    .await?)
}
