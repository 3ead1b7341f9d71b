//! Writes of federation's own tables: the per-partner outbox
//! (`federation_outbox`), each link's bookkeeping (`federation_peers`) and
//! the events applied from partners (`federation_applied`).

use super::Result;

/// Queues an encoded event for `partner`.
pub async fn enqueue<'e>(
    db: impl sqlx::PgExecutor<'e>,
    partner: &str,
    event_id: &str,
    payload: &[u8],
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO federation_outbox (partner, event_id, payload) VALUES ($1, $2, $3)",
        partner,
        event_id,
        payload
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The partner applied everything up to `applied`: record it and drop it
/// from the outbox.
pub async fn acknowledge(tx: &mut sqlx::PgConnection, partner: &str, applied: i64) -> Result<()> {
    sqlx::query!("INSERT INTO federation_peers (partner, acked_seq, last_contact, last_error) VALUES ($1, $2, now(), NULL)
         ON CONFLICT (partner) DO UPDATE SET acked_seq = GREATEST(federation_peers.acked_seq, $2),
             last_contact = now(), last_error = NULL", partner, applied)
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM federation_outbox WHERE partner = $1 AND seq <= $2",
        partner,
        applied
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// If the partner applied more than this outbox ever numbered (`applied`
/// beyond the sequence: the database was restored from an older backup),
/// moves the sequence past `applied` and renumbers `partner`'s queue above
/// it, in order; returns how many events moved, or `None` if nothing was
/// rewound. Takes a lock so one renumbering runs at a time.
pub async fn renumber_if_rewound(
    tx: &mut sqlx::PgConnection,
    partner: &str,
    applied: i64,
) -> Result<Option<u64>> {
    sqlx::query!("LOCK TABLE federation_outbox IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let last = sqlx::query_scalar!(
        r#"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS "last!"
         FROM federation_outbox_seq_seq"#
    )
    .fetch_one(&mut *tx)
    .await?;
    if applied <= last {
        return Ok(None);
    }
    sqlx::query_scalar!("SELECT setval('federation_outbox_seq_seq', $1)", applied)
        .fetch_one(&mut *tx)
        .await?;
    let moved = sqlx::query!(
        "WITH queued AS (
             DELETE FROM federation_outbox WHERE partner = $1
             RETURNING seq, partner, event_id, payload, created_at)
         INSERT INTO federation_outbox (partner, event_id, payload, created_at)
         SELECT partner, event_id, payload, created_at FROM queued ORDER BY seq",
        partner
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(Some(moved))
}

/// Notes that `partner` was heard from now; returns the highest sequence
/// number applied from it.
pub async fn contact<'e>(db: impl sqlx::PgExecutor<'e>, partner: &str) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO federation_peers (partner, last_contact) VALUES ($1, now())
         ON CONFLICT (partner) DO UPDATE SET last_contact = now()
         RETURNING applied_seq",
        partner
    )
    .fetch_one(db)
    .await?)
}

/// Notes that `partner` was heard from now, without reading anything.
pub async fn touch<'e>(db: impl sqlx::PgExecutor<'e>, partner: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE federation_peers SET last_contact = now() WHERE partner = $1",
        partner
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Everything up to `seq` from `partner` is applied.
pub async fn set_applied<'e>(db: impl sqlx::PgExecutor<'e>, partner: &str, seq: i64) -> Result<()> {
    sqlx::query!(
        "UPDATE federation_peers SET applied_seq = $2, last_contact = now() WHERE partner = $1",
        partner,
        seq
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Why the last session with `partner` failed.
pub async fn set_error<'e>(
    db: impl sqlx::PgExecutor<'e>,
    partner: &str,
    error: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO federation_peers (partner, last_error) VALUES ($1, $2)
         ON CONFLICT (partner) DO UPDATE SET last_error = $2",
        partner,
        error
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records that the event `event_id` of `origin` is applied; `false` if it
/// already was (it came again, or by another path).
pub async fn first_application<'e>(
    db: impl sqlx::PgExecutor<'e>,
    origin: &str,
    event_id: &str,
) -> Result<bool> {
    let first = sqlx::query!(
        "INSERT INTO federation_applied (origin, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        origin,
        event_id
    )
    .execute(db)
    .await?;
    Ok(first.rows_affected() == 1)
}
