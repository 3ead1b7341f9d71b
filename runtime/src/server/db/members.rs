//! Writes of `channel_members`: who is in a channel, in which role, and
//! how far they have read.

use super::Result;

/// Adds a member, with everything already posted marked as read; `false`
/// if they were a member already.
pub async fn insert<'e>(
    db: impl sqlx::PgExecutor<'e>,
    channel_id: &str,
    user_id: &str,
    role: &str,
) -> Result<bool> {
    let result = sqlx::query!(
        "INSERT INTO channel_members (channel_id, user_id, role, last_read_seq)
         VALUES ($1, $2, $3, COALESCE((SELECT max(seq) FROM posts WHERE channel_id = $1), 0))
         ON CONFLICT DO NOTHING",
        channel_id,
        user_id,
        role
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes a member; `false` if they were not one.
pub async fn delete<'e>(
    db: impl sqlx::PgExecutor<'e>,
    channel_id: &str,
    user_id: &str,
) -> Result<bool> {
    let removed = sqlx::query!(
        "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2",
        channel_id,
        user_id
    )
    .execute(db)
    .await?;
    Ok(removed.rows_affected() == 1)
}

/// Moves each member's read marker in a channel forward to `seq` (their
/// own new post), never back: (channel, user, seq) each.
pub async fn read_to<'e>(
    db: impl sqlx::PgExecutor<'e>,
    markers: &[(&str, &str, i64)],
) -> Result<()> {
    if markers.is_empty() {
        return Ok(());
    }
    let channels: Vec<&str> = markers.iter().map(|m| m.0).collect();
    let users: Vec<&str> = markers.iter().map(|m| m.1).collect();
    let seqs: Vec<i64> = markers.iter().map(|m| m.2).collect();
    // One row per member, at the furthest of their markers.
    sqlx::query!(
        "UPDATE channel_members m SET last_read_seq = GREATEST(m.last_read_seq, r.seq)
         FROM (SELECT channel_id, user_id, max(seq) AS seq
               FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(channel_id, user_id, seq)
               GROUP BY channel_id, user_id) r
         WHERE m.channel_id = r.channel_id AND m.user_id = r.user_id",
        &channels as &[&str],
        &users as &[&str],
        &seqs
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Moves a member's read marker forward to `seq` (everything when `None`),
/// never back and never past the channel's newest post.
pub async fn mark_read<'e>(
    db: impl sqlx::PgExecutor<'e>,
    channel_id: &str,
    user_id: &str,
    seq: Option<i64>,
) -> Result<()> {
    sqlx::query!("UPDATE channel_members SET last_read_seq = GREATEST(last_read_seq,
             LEAST(COALESCE($3, 9223372036854775807), COALESCE((SELECT max(seq) FROM posts WHERE channel_id = $1), 0)))
         WHERE channel_id = $1 AND user_id = $2", channel_id, user_id, seq)
    .execute(db)
    .await?;
    Ok(())
}

/// The channels `user_id` is a member of.
pub async fn channels_of(db: &sqlx::PgPool, user_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT channel_id FROM channel_members WHERE user_id = $1",
        user_id
    )
    .fetch_all(db)
    .await?)
}

/// Whether a member has posts of a channel translated for them; `false`
/// if they are not a member.
pub async fn set_translate<'e>(
    db: impl sqlx::PgExecutor<'e>,
    channel_id: &str,
    user_id: &str,
    translate: bool,
) -> Result<bool> {
    let done = sqlx::query!(
        "UPDATE channel_members SET translate = $3 WHERE channel_id = $1 AND user_id = $2",
        channel_id,
        user_id,
        translate
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
