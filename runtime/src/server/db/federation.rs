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

/// Records that each event (`origin`, `event_id`) is applied, in one
/// statement; returns those that were not already (they came before, by
/// another path, or twice in `events`).
pub async fn first_applications<'e>(
    db: impl sqlx::PgExecutor<'e>,
    events: &[(&str, &str)],
) -> Result<std::collections::HashSet<(String, String)>> {
    if events.is_empty() {
        return Ok(Default::default());
    }
    let (origins, ids): (Vec<&str>, Vec<&str>) = events.iter().copied().unzip();
    let rows = sqlx::query!(
        r#"INSERT INTO federation_applied (origin, event_id)
           SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING
           RETURNING origin AS "origin!", event_id AS "event_id!""#,
        &origins as &[&str],
        &ids as &[&str]
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.origin, r.event_id)).collect())
}
