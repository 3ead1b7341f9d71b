//! Writes of `files` (uploads, and partners' files as they arrive) and of
//! `federation_file_parts`, the chunks of a partner's file in transit.

use sqlx::postgres::PgRow;

use super::Result;

/// An uploaded file whose bytes are in the object store.
pub struct NewUpload<'a> {
    pub id: &'a str,
    pub channel_id: &'a str,
    pub uploader_id: &'a str,
    pub name: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub object_key: &'a str,
    pub sha256: &'a [u8],
}

/// Records an upload, not yet attached to a post; returns the row as `T`
/// (from the columns `id, channel_id, post_id, name, content_type, size, created_at`).
/// Not `query_as!`: the row is read into the caller's type, which the data
/// layer does not name.
pub async fn insert_upload<'e, T>(db: impl sqlx::PgExecutor<'e>, file: NewUpload<'_>) -> Result<T>
where
    T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    Ok(sqlx::query_as(
        "INSERT INTO files (id, channel_id, uploader_id, name, content_type, size, object_key, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, channel_id, post_id, name, content_type, size, created_at",
    )
    .bind(file.id)
    .bind(file.channel_id)
    .bind(file.uploader_id)
    .bind(file.name)
    .bind(file.content_type)
    .bind(file.size)
    .bind(file.object_key)
    .bind(file.sha256)
    .fetch_one(db)
    .await?)
}

/// Attaches `user_id`'s unattached uploads in `channel_id` to `post_id`;
/// how many were attached.
pub async fn attach<'e>(
    db: impl sqlx::PgExecutor<'e>,
    post_id: &str,
    file_ids: &[String],
    user_id: &str,
    channel_id: &str,
) -> Result<u64> {
    let attached = sqlx::query!(
        "UPDATE files SET post_id = $1
         WHERE id = ANY($2) AND uploader_id = $3 AND channel_id = $4 AND post_id IS NULL",
        post_id,
        file_ids,
        user_id,
        channel_id
    )
    .execute(db)
    .await?;
    Ok(attached.rows_affected())
}

/// A partner's file, named by its post, whose bytes are still to come.
pub struct NewPartnerFile<'a> {
    pub id: &'a str,
    pub channel_id: &'a str,
    pub uploader_id: &'a str,
    pub post_id: &'a str,
    pub name: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub object_key: &'a str,
    pub sha256: &'a [u8],
    /// The workspace it was uploaded at, and the partner it comes from.
    pub origin: &'a str,
    pub source: &'a str,
    /// Why it will never come (over the partner's size limit); else pending.
    pub refused: Option<String>,
}

pub async fn insert_partner_file<'e>(
    db: impl sqlx::PgExecutor<'e>,
    file: NewPartnerFile<'_>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO files (id, channel_id, uploader_id, post_id, name, content_type, size,
                            object_key, sha256, origin, source, state, refused_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        file.id,
        file.channel_id,
        file.uploader_id,
        file.post_id,
        file.name,
        file.content_type,
        file.size,
        file.object_key,
        file.sha256,
        file.origin,
        file.source,
        if file.refused.is_some() {
            "refused"
        } else {
            "pending"
        },
        file.refused
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Ends a pending file as `ready` (with the type its bytes show) or
/// `refused` (with the reason), and drops its chunks.
pub async fn settle(
    tx: &mut sqlx::PgConnection,
    file_id: &str,
    outcome: &str,
    reason: Option<&str>,
    content_type: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE files SET state = $2, refused_reason = $3, content_type = $4
         WHERE id = $1 AND state = 'pending'",
        file_id,
        outcome,
        reason,
        content_type
    )
    .execute(&mut *tx)
    .await?;
    drop_parts(&mut *tx, file_id).await
}

/// Keeps one chunk of a partner's file in transit.
pub async fn insert_part<'e>(
    db: impl sqlx::PgExecutor<'e>,
    file_id: &str,
    at_byte: i64,
    data: &[u8],
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO federation_file_parts (file_id, at_byte, data) VALUES ($1, $2, $3)",
        file_id,
        at_byte,
        data
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Drops every chunk of a file in transit.
pub async fn drop_parts<'e>(db: impl sqlx::PgExecutor<'e>, file_id: &str) -> Result<()> {
    sqlx::query!(
        "DELETE FROM federation_file_parts WHERE file_id = $1",
        file_id
    )
    .execute(db)
    .await?;
    Ok(())
}
