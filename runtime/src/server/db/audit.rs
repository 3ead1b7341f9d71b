//! Writes of the audit log (`audit_log`, append-only: a trigger refuses
//! updates and deletes), of the audit-mode findings already recorded
//! (`access_findings`) and of the policies last seen in effect
//! (`access_policies_seen`), which keep each finding and policy change
//! recorded once across replicas and restarts.

use super::Result;

/// One entry to write.
#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    pub kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub channel_id: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub reason: String,
    pub data: serde_json::Value,
}

/// Appends `entry`; in a transaction, it stands or falls with the change it records.
pub async fn record<'e>(db: impl sqlx::PgExecutor<'e>, entry: Entry<'_>) -> Result<()> {
    let data = if entry.data.is_null() {
        serde_json::json!({})
    } else {
        entry.data
    };
    sqlx::query!(
        "INSERT INTO audit_log (kind, actor_id, user_id, channel_id, policy, reason, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        entry.kind,
        entry.actor_id,
        entry.user_id,
        entry.channel_id,
        entry.policy,
        &entry.reason,
        data
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets the findings for `user_id` in `channel_id` of policies not in
/// `still_refusing`, so a later refusal is recorded again.
pub async fn forget_findings<'e>(
    db: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    channel_id: &str,
    still_refusing: &[String],
) -> Result<()> {
    sqlx::query!("DELETE FROM access_findings WHERE user_id = $1 AND channel_id = $2 AND NOT (policy = ANY($3))", user_id, channel_id, still_refusing)
    .execute(db)
    .await?;
    Ok(())
}

/// Notes a finding; `false` if it was already noted.
pub async fn note_finding<'e>(
    db: impl sqlx::PgExecutor<'e>,
    policy: &str,
    user_id: &str,
    channel_id: &str,
) -> Result<bool> {
    let new = sqlx::query!("INSERT INTO access_findings (policy, user_id, channel_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", policy, user_id, channel_id)
    .execute(db)
    .await?;
    Ok(new.rows_affected() == 1)
}

/// Holds the policies last seen until `tx` ends, so one replica at a time compares.
pub async fn lock_policies_seen(tx: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query!("LOCK TABLE access_policies_seen IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The policy `name` is now in effect as `definition`, or (`None`) gone.
pub async fn set_policy_seen<'e>(
    db: impl sqlx::PgExecutor<'e>,
    name: &str,
    definition: Option<&serde_json::Value>,
) -> Result<()> {
    match definition {
        Some(definition) => {
            sqlx::query!(
                "INSERT INTO access_policies_seen (name, definition) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET definition = $2, seen_at = now()",
                name,
                definition
            )
            .execute(db)
            .await?
        }
        None => {
            sqlx::query!("DELETE FROM access_policies_seen WHERE name = $1", name)
                .execute(db)
                .await?
        }
    };
    Ok(())
}
