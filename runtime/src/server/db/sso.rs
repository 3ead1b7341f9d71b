//! Single sign-on: sign-ins under way (`sso_flows`) and the links between
//! users and their identity provider's key for them (`user_identities`).

use super::Result;

/// How long a sign-in may take between leaving for the provider and
/// coming back.
pub const FLOW_LIFETIME_SECONDS: i32 = 600;

/// Remembers a sign-in that left for the provider (and forgets the ones
/// that never came back).
pub async fn begin<'e>(
    db: impl sqlx::PgExecutor<'e>,
    state: &str,
    nonce: &str,
    verifier: &str,
) -> Result<()> {
    sqlx::query!(
        "WITH gone AS (DELETE FROM sso_flows WHERE created_at < now() - make_interval(secs => $4))
         INSERT INTO sso_flows (state, nonce, verifier) VALUES ($1, $2, $3)",
        state,
        nonce,
        verifier,
        f64::from(FLOW_LIFETIME_SECONDS)
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The nonce and PKCE verifier of the sign-in `state` names, taken: a
/// second callback with the same state finds nothing. `None` past its
/// lifetime too.
pub async fn take<'e>(
    db: impl sqlx::PgExecutor<'e>,
    state: &str,
) -> Result<Option<(String, String)>> {
    Ok(sqlx::query!(
        "DELETE FROM sso_flows WHERE state = $1
         RETURNING nonce, verifier, created_at > now() - make_interval(secs => $2) AS \"fresh!\"",
        state,
        f64::from(FLOW_LIFETIME_SECONDS)
    )
    .fetch_optional(db)
    .await?
    .filter(|row| row.fresh)
    .map(|row| (row.nonce, row.verifier)))
}

/// The user linked to `subject` at `provider`.
pub async fn user_of<'e>(
    db: impl sqlx::PgExecutor<'e>,
    provider: &str,
    subject: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT user_id FROM user_identities WHERE provider = $1 AND subject = $2",
        provider,
        subject
    )
    .fetch_optional(db)
    .await?)
}

/// Whether `user_id` signs in through an identity provider.
pub async fn linked(db: &sqlx::PgPool, user_id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_identities WHERE user_id = $1) AS "linked!""#,
        user_id
    )
    .fetch_one(db)
    .await?)
}

/// Links `user_id` to `subject` at `provider`.
pub async fn link<'e>(
    db: impl sqlx::PgExecutor<'e>,
    provider: &str,
    subject: &str,
    user_id: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO user_identities (provider, subject, user_id) VALUES ($1, $2, $3)",
        provider,
        subject,
        user_id
    )
    .execute(db)
    .await?;
    Ok(())
}
