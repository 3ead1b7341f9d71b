//! Writes of `calls` (one open call per channel at most) and
//! `call_participants` (who is in it now).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Result;

/// A call as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub id: String,
    pub channel_id: String,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Who is in the call now.
    pub participants: Vec<String>,
}

/// Opens a call in `channel_id` on `node`; `false` if one is open already
/// (started concurrently).
pub async fn open<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    channel_id: &str,
    node: &str,
    started_by: &str,
) -> Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO calls (id, channel_id, node, started_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        id,
        channel_id,
        node,
        started_by
    )
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Puts `user_id` into the channel's open call (again, if they had left it).
pub async fn enter<'e>(
    db: impl sqlx::PgExecutor<'e>,
    channel_id: &str,
    user_id: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO call_participants (call_id, user_id)
         SELECT id, $2 FROM calls WHERE channel_id = $1 AND ended_at IS NULL
         ON CONFLICT (call_id, user_id) DO UPDATE SET joined_at = now(), left_at = NULL",
        channel_id,
        user_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Takes `user_id` out of the channel's open call; `false` if they were not in it.
pub async fn depart<'e>(
    db: impl sqlx::PgExecutor<'e>,
    channel_id: &str,
    user_id: &str,
) -> Result<bool> {
    let left = sqlx::query!(
        "UPDATE call_participants p SET left_at = now() FROM calls c
         WHERE c.id = p.call_id AND c.channel_id = $1 AND c.ended_at IS NULL
           AND p.user_id = $2 AND p.left_at IS NULL",
        channel_id,
        user_id
    )
    .execute(db)
    .await?;
    Ok(left.rows_affected() > 0)
}

/// Ends a call now; returns when.
pub async fn end<'e>(db: impl sqlx::PgExecutor<'e>, call_id: &str) -> Result<DateTime<Utc>> {
    // `ended_at!`: the column is nullable, but this statement just set it.
    Ok(sqlx::query_scalar!(
        r#"UPDATE calls SET ended_at = now() WHERE id = $1 RETURNING ended_at AS "ended_at!""#,
        call_id
    )
    .fetch_one(db)
    .await?)
}
