//! Writes of `channels`: named channels, direct and group conversations,
//! the channels a partner share writes into, labels and archiving.

use super::{inserted, Result};

/// Creates a public or private channel; `false` if the name is taken.
pub async fn insert_named<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    kind: &str,
    name: &str,
    display_name: &str,
    purpose: &str,
    created_by: &str,
) -> Result<bool> {
    inserted(
        sqlx::query!(
            "INSERT INTO channels (id, kind, name, display_name, purpose, created_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
            id,
            kind,
            name,
            display_name,
            purpose,
            created_by
        )
        .execute(db)
        .await,
    )
}

/// Creates the public channel a partner share names, by no one, unless a
/// channel of that name exists.
pub async fn insert_shared<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    name: &str,
    organisation: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO channels (id, kind, name, display_name, purpose)
         VALUES ($1, 'public', $2, $2, 'Shared with ' || $3)
         ON CONFLICT DO NOTHING",
        id,
        name,
        organisation
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Creates the direct conversation keyed by `direct_key` (the two user ids,
/// sorted); `false` if it exists already (created concurrently).
pub async fn insert_direct<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    direct_key: &str,
    created_by: &str,
) -> Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO channels (id, kind, direct_key, created_by) VALUES ($1, 'direct', $2, $3)
         ON CONFLICT (direct_key) DO NOTHING",
        id,
        direct_key,
        created_by
    )
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Creates a group conversation.
pub async fn insert_group<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    created_by: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO channels (id, kind, created_by) VALUES ($1, 'group', $2)",
        id,
        created_by
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Archives a channel; `false` if it already was.
pub async fn archive<'e>(db: impl sqlx::PgExecutor<'e>, id: &str) -> Result<bool> {
    let archived = sqlx::query!(
        "UPDATE channels SET archived_at = now() WHERE id = $1 AND archived_at IS NULL",
        id
    )
    .execute(db)
    .await?;
    Ok(archived.rows_affected() == 1)
}

/// Replaces a channel's labels.
pub async fn set_labels<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    labels: &serde_json::Value,
) -> Result<()> {
    sqlx::query!("UPDATE channels SET labels = $2 WHERE id = $1", id, labels)
        .execute(db)
        .await?;
    Ok(())
}

/// What a channel is called and says about itself.
pub struct Description<'a> {
    pub name: Option<&'a str>,
    pub display_name: &'a str,
    pub purpose: &'a str,
    pub header: &'a str,
}

/// Renames a channel or changes its purpose or header; `false` if the new
/// name is taken.
pub async fn describe<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    description: Description<'_>,
) -> Result<bool> {
    inserted(
        sqlx::query!(
            "UPDATE channels SET name = $2, display_name = $3, purpose = $4, header = $5 WHERE id = $1",
            id,
            description.name,
            description.display_name,
            description.purpose,
            description.header
        )
        .execute(db)
        .await,
    )
}

/// Turns translation on or off in a channel.
pub async fn set_translation<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: &str,
    enabled: bool,
) -> Result<()> {
    sqlx::query!(
        "UPDATE channels SET translation = $2 WHERE id = $1",
        id,
        enabled
    )
    .execute(db)
    .await?;
    Ok(())
}
