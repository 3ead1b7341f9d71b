//! The sending side: one task per partner pushes its outbox.
//!
//! A session starts where the partner says it stopped (`Resume`), sends
//! batches in order with a bounded number unacknowledged, deletes what the
//! partner acknowledges, and sends keepalives when idle. A failed or cut
//! session is retried with exponential backoff and jitter, up to the
//! partner's `maxBackoffSeconds`. Across replicas only the holder of the
//! partner's advisory lock sends.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use prost::Message as _;
use sqlx::Connection as _;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;

use super::{
    error::{Error, Result},
    proto::{
        federation_client::FederationClient, push_frame, push_reply, Batch, Envelope, Keepalive,
        PushFrame,
    },
};
use crate::server::{db, state::AppState};

/// Events per batch.
const BATCH: i64 = 500;
/// Batches sent and not yet acknowledged.
const WINDOW: usize = 4;
/// Key space of the per-partner sender locks (`hash(partner)` is added).
const LOCK_BASE: i64 = 0x656e_7465_6e74_6600;

/// Keeps one sender per configured partner running, as the config changes.
pub async fn run(state: AppState) {
    let mut senders: HashMap<String, (String, JoinHandle<()>)> = HashMap::new();
    let mut shutdown = state.shutdown.clone();
    // The shares whose channels were last made to exist.
    let mut ensured: Option<Vec<(String, String)>> = None;
    loop {
        let config = state.config();
        let shares: Vec<(String, String)> = config
            .federation
            .partners
            .iter()
            .flat_map(|p| {
                p.channels
                    .iter()
                    .map(|s| (p.workspace_id.clone(), s.name.clone()))
            })
            .collect();
        if ensured.as_ref() != Some(&shares) {
            match super::ensure_shared_channels(&state.db, &config).await {
                Ok(()) => ensured = Some(shares),
                Err(error) => {
                    tracing::warn!(%error, "could not create the shared channels; retrying")
                }
            }
        }
        if let Err(error) = super::refresh_paused(&state).await {
            tracing::warn!(%error, "could not measure the federation queues");
        }
        let wanted: BTreeMap<String, String> = config
            .federation
            .partners
            .iter()
            .filter(|p| !p.suspended)
            .map(|p| {
                (
                    p.workspace_id.clone(),
                    serde_json::to_string(p).unwrap_or_default(),
                )
            })
            .collect();
        senders.retain(|id, (definition, task)| {
            let keep = wanted.get(id) == Some(definition) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (id, definition) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = senders.entry(id) {
                let task = tokio::spawn(sender(state.clone(), slot.key().clone()));
                slot.insert((definition, task));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    for (_, (_, task)) in senders {
        task.abort();
    }
}

fn lock_key(partner: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(partner.as_bytes());
    LOCK_BASE ^ i64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) & 0xff_ffff
}

/// Retries sessions with `partner` for as long as it is configured.
async fn sender(state: AppState, partner: String) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let result = session(&state, &partner).await;
        let max = super::partner(&state.config(), &partner)
            .map(|p| p.sync.max_backoff_seconds.max(1))
            .unwrap_or(300) as f64;
        match result {
            Ok(()) => failures = 0,
            Err(why) => {
                // A session that ran a while before failing starts the backoff afresh.
                if started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                failures += 1;
                tracing::info!(%partner, "federation session: {why}");
                let _ = db::federation::set_error(&state.db, &partner, &why.to_string()).await;
            }
        }
        let base = (0.25 * 2f64.powi(failures.min(20) as i32)).min(max);
        let jitter = 0.5 + rand_unit();
        tokio::time::sleep(Duration::from_secs_f64(base * jitter)).await;
    }
}

/// A number in [0, 1) from the OS's randomness.
fn rand_unit() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes) as f64 / (u32::MAX as f64 + 1.0)
}

/// One session; `Ok` when there is nothing to do here (another replica
/// sends), `Err` with the reason when it failed.
async fn session(state: &AppState, partner_id: &str) -> Result<()> {
    // The lock lives as long as this connection, which never returns to the pool.
    let mut lock = state.db.acquire().await?.detach();
    let locked = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_lock($1) AS "locked!""#,
        lock_key(partner_id)
    )
    .fetch_one(&mut lock)
    .await?;
    if !locked {
        tokio::time::sleep(Duration::from_secs(5)).await;
        return Ok(());
    }
    let result = push(state, partner_id).await;
    let _ = lock.close().await;
    result
}

/// Over one connection: pushes the outbox, and pulls the partner's files
/// alongside, until the link fails.
async fn push(state: &AppState, partner_id: &str) -> Result<()> {
    let config = state.config();
    let partner = super::partner(&config, partner_id)
        .ok_or_else(|| Error::Setup(format!("partner {partner_id:?} is no longer configured")))?
        .clone();
    let channel = super::tls::connect(&config, &partner).await?;
    tokio::select! {
        result = push_events(state, &partner, channel.clone()) => result,
        () = super::files::fetch_pending(state, &partner, channel) => Ok(()),
    }
}

async fn push_events(
    state: &AppState,
    partner: &entente_crds::config::PartnerConfig,
    channel: tonic::transport::Channel,
) -> Result<()> {
    let partner_id = partner.workspace_id.as_str();
    let mut client = FederationClient::new(channel).max_decoding_message_size(64 << 20);
    if partner.sync.compression {
        client = client
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);
    }
    let (frames, outgoing) = tokio::sync::mpsc::channel::<PushFrame>(WINDOW + 1);
    let status = |s: tonic::Status| Error::Link {
        partner: partner_id.to_string(),
        endpoint: partner.endpoint.clone(),
        message: s.message().to_string(),
    };
    let closed = || Error::protocol(partner_id, "the partner closed the session");
    let mut replies = client
        .push(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await
        .map_err(status)?
        .into_inner();
    let first = replies
        .message()
        .await
        .map_err(status)?
        .ok_or_else(closed)?;
    let Some(push_reply::Body::Resume(resume)) = first.body else {
        return Err(Error::protocol(
            partner_id,
            "the partner did not say where to resume",
        ));
    };
    renumber_if_rewound(state, partner_id, resume.applied).await?;
    acknowledge(state, partner_id, resume.applied).await?;
    tracing::info!(partner = %partner_id, resume = resume.applied, "federation session open");
    let mut sent = resume.applied as i64;
    let mut in_flight: Vec<i64> = Vec::new();
    let mut events = state.hub.subscribe();
    let keepalive = Duration::from_secs(partner.sync.keepalive_seconds.max(1) as u64);
    let mut last_sent = Instant::now();
    loop {
        if in_flight.len() < WINDOW {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query!(
                "SELECT seq, payload FROM federation_outbox WHERE partner = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                partner_id,
                sent,
                BATCH
            )
            .fetch_all(&state.db)
            .await?
            .into_iter()
            .map(|row| (row.seq, row.payload))
            .collect();
            if let Some((last, _)) = rows.last() {
                let last = *last;
                let bytes: usize = rows.iter().map(|(_, p)| p.len()).sum();
                let envelopes = rows
                    .into_iter()
                    .filter_map(|(seq, payload)| {
                        let event = super::proto::Event::decode(payload.as_slice()).ok()?;
                        Some(Envelope {
                            seq: seq as u64,
                            event: Some(event),
                        })
                    })
                    .collect();
                super::pace(state, partner_id, bytes).await;
                let frame = PushFrame {
                    body: Some(push_frame::Body::Batch(Batch { events: envelopes })),
                };
                frames.send(frame).await.map_err(|_| closed())?;
                sent = last;
                in_flight.push(last);
                last_sent = Instant::now();
                continue;
            }
        }
        let idle = keepalive.saturating_sub(last_sent.elapsed());
        tokio::select! {
            reply = replies.message() => {
                let reply = reply.map_err(status)?.ok_or_else(closed)?;
                if let Some(push_reply::Body::Ack(ack)) = reply.body {
                    in_flight.retain(|seq| *seq as u64 > ack.applied);
                    acknowledge(state, partner_id, ack.applied).await?;
                    if ack.rejected > 0 {
                        tracing::warn!(partner = %partner_id, rejected = ack.rejected, "the partner refused events");
                    }
                }
            }
            _ = events.recv() => {}
            _ = tokio::time::sleep(idle.min(Duration::from_secs(1))) => {
                if last_sent.elapsed() >= keepalive {
                    let frame = PushFrame { body: Some(push_frame::Body::Keepalive(Keepalive {})) };
                    frames.send(frame).await.map_err(|_| closed())?;
                    last_sent = Instant::now();
                }
            }
        }
    }
}

/// The partner says it applied up to `applied`, beyond any sequence number
/// this outbox has handed out: this database was restored from a backup
/// taken before events the partner had already applied. Events queued now
/// carry numbers the partner counts as applied, so it would skip them and
/// this side would drop them as acknowledged. Instead the sequence moves
/// past `applied` and the queue is renumbered above it, in order; the
/// partner still applies each event once, by its id.
pub(super) async fn renumber_if_rewound(
    state: &AppState,
    partner: &str,
    applied: u64,
) -> Result<()> {
    let mut tx = state.db.begin().await?;
    let moved = db::federation::renumber_if_rewound(&mut tx, partner, applied as i64).await?;
    let Some(moved) = moved else {
        return Ok(());
    };
    db::commit(tx).await?;
    tracing::warn!(
        %partner, applied, moved,
        "the partner has applied more of our events than we ever numbered: this database was restored; the queue is renumbered above its mark"
    );
    Ok(())
}

/// Records that the partner applied everything up to `applied`, and drops it from the outbox.
pub(super) async fn acknowledge(state: &AppState, partner: &str, applied: u64) -> Result<()> {
    let mut tx = state.db.begin().await?;
    db::federation::acknowledge(&mut tx, partner, applied as i64).await?;
    Ok(db::commit(tx).await?)
}
