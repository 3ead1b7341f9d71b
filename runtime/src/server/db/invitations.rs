//! Writes of `invitations`: single-use guest invitations, stored as hashes
//! of the tokens handed out.

use chrono::{DateTime, Utc};

use super::Result;

pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub token_hash: &'a [u8],
    pub policy: &'a str,
    pub email: &'a str,
    pub organisation: Option<&'a str>,
    pub invited_by: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert<'e>(
    db: impl sqlx::PgExecutor<'e>,
    invitation: NewInvitation<'_>,
) -> Result<()> {
    sqlx::query!("INSERT INTO invitations (id, token_hash, policy, email, organisation, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)", invitation.id, invitation.token_hash, invitation.policy, invitation.email, invitation.organisation, invitation.invited_by, invitation.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The invitation was used, by `user_id`.
pub async fn redeemed<'e>(db: impl sqlx::PgExecutor<'e>, id: &str, user_id: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE invitations SET redeemed_at = now(), redeemed_by = $2 WHERE id = $1",
        id,
        user_id
    )
    .execute(db)
    .await?;
    Ok(())
}
