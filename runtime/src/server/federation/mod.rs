//! Federation: channels shared with partner workspaces stay in sync over
//! mutual-TLS gRPC, across cut and intermittent links.
//!
//! - A change in a shared channel is queued, in the transaction that makes
//!   it, in a durable per-partner outbox ([`publish`]).
//! - One sender per partner (across replicas: a PostgreSQL advisory lock)
//!   pushes the outbox from where the partner says it stopped, and deletes
//!   what it acknowledges ([`send`]).
//! - The receiving side identifies the partner by its client certificate
//!   before reading anything ([`tls`]), checks every event against what is
//!   shared with that partner, and applies each exactly once
//!   ([`receive`], [`apply`]).
//!
//! - Files follow their posts: the receiver pulls their bytes in chunks it
//!   keeps until the file is whole, so a cut transfer resumes ([`files`]).
//! - Where no link runs, signed offline bundles carry the same events and
//!   their acknowledgement by hand, files included ([`bundle`]).

pub mod apply;
pub mod bundle;
pub mod error;
pub mod files;
pub mod receive;
pub mod send;
pub mod tls;

use entente_crds::{
    config::{PartnerConfig, RuntimeConfig, SharedChannelConfig},
    partner_connection::QueueFullPolicy,
};
use prost::Message as _;
use sqlx::{Postgres, Transaction};

pub use entente_proto::federation as proto;

use super::db::{self, new_id};

/// Audit kind of an event a partner sent that was refused.
pub const REJECTED: &str = "federation.rejected";

/// The partners `channel` (a local name) is shared with, and how.
pub fn shares<'c>(
    config: &'c RuntimeConfig,
    channel: &'c str,
) -> impl Iterator<Item = (&'c PartnerConfig, &'c SharedChannelConfig)> + 'c {
    config.federation.partners.iter().flat_map(move |partner| {
        partner
            .channels
            .iter()
            .filter(move |share| share.name.eq_ignore_ascii_case(channel))
            .map(move |share| (partner, share))
    })
}

pub fn partner<'c>(config: &'c RuntimeConfig, workspace_id: &str) -> Option<&'c PartnerConfig> {
    config
        .federation
        .partners
        .iter()
        .find(|p| p.workspace_id == workspace_id)
}

/// The local channel a share writes into. A share may name a channel that
/// does not exist yet: it is created public (local members find and join
/// it; an AccessPolicy naming it gates it), by no one, so that whichever
/// comes first — the config or a partner's event — the name means one
/// channel and no local user is refused it as taken.
pub async fn shared_channel(
    db: &mut sqlx::PgConnection,
    partner: &PartnerConfig,
    name: &str,
) -> Result<String, db::Error> {
    db::channels::insert_shared(&mut *db, &new_id(), name, &partner.organisation).await?;
    Ok(sqlx::query_scalar!(
        "SELECT id FROM channels WHERE lower(name) = lower($1) AND kind IN ('public', 'private')",
        name
    )
    .fetch_one(&mut *db)
    .await?)
}

/// Makes every channel the config shares exist (see [`shared_channel`]).
pub async fn ensure_shared_channels(
    pool: &sqlx::PgPool,
    config: &RuntimeConfig,
) -> Result<(), db::Error> {
    let mut connection = pool.acquire().await?;
    for partner in &config.federation.partners {
        for share in &partner.channels {
            shared_channel(&mut connection, partner, &share.name).await?;
        }
    }
    Ok(())
}

/// A local user as partners see them.
async fn profile(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    user_id: &str,
) -> Result<proto::Profile, db::Error> {
    let user = sqlx::query!(
        "SELECT username, display_name, role, origin FROM users WHERE id = $1",
        user_id
    )
    .fetch_one(&mut **tx)
    .await?;
    let (username, display_name, role, origin) =
        (user.username, user.display_name, user.role, user.origin);
    Ok(proto::Profile {
        id: user_id.to_string(),
        username,
        display_name,
        origin: origin.unwrap_or_else(|| config.workspace.id.clone()),
        guest: role == "guest",
    })
}

/// Queues a change `user_id` made at `at` in channel `channel_id` for every
/// partner the channel is shared with, in `tx`: it is sent if and only if
/// the change commits. Changes by partners' users are theirs to send, and
/// channels shared with no one cost one lookup in the config.
pub async fn publish(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    channel_id: &str,
    user_id: &str,
    at: chrono::DateTime<chrono::Utc>,
    op: proto::event::Op,
) -> Result<(), db::Error> {
    publish_as(tx, config, channel_id, user_id, at, |_| op).await
}

/// Tells partners that a local user joined or left a shared channel.
pub async fn publish_membership(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    channel_id: &str,
    user_id: &str,
    joined: bool,
) -> Result<(), db::Error> {
    publish_as(tx, config, channel_id, user_id, chrono::Utc::now(), |me| {
        let member = proto::Membership {
            member: Some(me.clone()),
        };
        if joined {
            proto::event::Op::MemberJoined(member)
        } else {
            proto::event::Op::MemberLeft(member)
        }
    })
    .await
}

/// [`publish`], with the change made from the author's profile.
async fn publish_as(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    channel_id: &str,
    user_id: &str,
    at: chrono::DateTime<chrono::Utc>,
    op: impl FnOnce(&proto::Profile) -> proto::event::Op,
) -> Result<(), db::Error> {
    if config.federation.partners.is_empty() {
        return Ok(());
    }
    let name = sqlx::query_scalar!("SELECT name FROM channels WHERE id = $1", channel_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(Some(name)) = name else {
        return Ok(());
    };
    if shares(config, &name).next().is_none() {
        return Ok(());
    }
    let author = profile(tx, config, user_id).await?;
    if author.origin != config.workspace.id {
        return Ok(());
    }
    let event = proto::Event {
        id: new_id(),
        origin: config.workspace.id.clone(),
        channel: name.clone(),
        at_micros: at.timestamp_micros(),
        op: Some(op(&author)),
        author: Some(author),
    };
    enqueue(tx, config, &name, &event, &[]).await
}

/// Puts `event` in the outbox of every partner `channel` is shared with,
/// except those in `except` and the event's origin (never echoed back).
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    channel: &str,
    event: &proto::Event,
    except: &[&str],
) -> Result<(), db::Error> {
    for (partner, _) in shares(config, channel) {
        let id = partner.workspace_id.as_str();
        if except.contains(&id) || id == event.origin {
            continue;
        }
        let mut event = event.clone();
        event.channel = channel.to_string();
        db::federation::enqueue(&mut **tx, id, &event.id, &event.encode_to_vec()).await?;
    }
    Ok(())
}

/// Events and bytes queued for `partner`.
async fn queued(db: &sqlx::PgPool, partner: &str) -> Result<(i64, i64), sqlx::Error> {
    let queued = sqlx::query!(
        r#"SELECT count(*) AS "events!", COALESCE(sum(length(payload)), 0)::bigint AS "bytes!"
         FROM federation_outbox WHERE partner = $1"#,
        partner
    )
    .fetch_one(db)
    .await?;
    Ok((queued.events, queued.bytes))
}

fn over_bound(partner: &PartnerConfig, (events, bytes): (i64, i64)) -> bool {
    events as u64 > partner.sync.max_queued_events || bytes as u64 > partner.sync.max_queued_bytes
}

/// Recomputes which partners pause their shared channels: those under
/// `PauseSharedChannels` whose queue is over its bound. Others cost nothing.
pub async fn refresh_paused(state: &crate::server::state::AppState) -> Result<(), sqlx::Error> {
    let config = state.config();
    let mut paused = std::collections::BTreeSet::new();
    for partner in &config.federation.partners {
        if partner.sync.when_queue_full == QueueFullPolicy::PauseSharedChannels
            && over_bound(partner, queued(&state.db, &partner.workspace_id).await?)
        {
            paused.insert(partner.workspace_id.clone());
        }
    }
    *state
        .paused_partners
        .write()
        .unwrap_or_else(|e| e.into_inner()) = paused;
    Ok(())
}

/// Why a local post in `channel` (a local name) must wait, if it must: a
/// partner it is shared with is paused.
pub fn paused(state: &crate::server::state::AppState, channel: &str) -> Option<String> {
    let paused = state
        .paused_partners
        .read()
        .unwrap_or_else(|e| e.into_inner());
    if paused.is_empty() {
        return None;
    }
    let config = state.config();
    let why = shares(&config, channel)
        .find(|(partner, _)| paused.contains(&partner.workspace_id))
        .map(|(partner, _)| {
            format!(
                "this channel is shared with {} and the link to it is behind by more than its queue allows; posting resumes when the queue drains",
                partner.organisation
            )
        });
    why
}

/// The link and queue towards each configured partner, for the admin API.
pub async fn figures(
    state: &crate::server::state::AppState,
) -> Result<Vec<entente_proto::admin::PartnerFigures>, sqlx::Error> {
    let config = state.config();
    let mut figures = Vec::new();
    for partner in &config.federation.partners {
        let row = sqlx::query!(
            r#"SELECT (SELECT last_contact FROM federation_peers WHERE partner = $1) AS last_contact,
                      (SELECT last_error FROM federation_peers WHERE partner = $1) AS last_error,
                      count(*) AS "queued_events!", COALESCE(sum(length(payload)), 0)::bigint AS "queued_bytes!",
                      extract(epoch FROM now() - min(created_at))::float8 AS oldest,
                      (SELECT count(*) FROM audit_log WHERE kind = $2 AND data->>'partner' = $1) AS "rejected!"
               FROM federation_outbox WHERE partner = $1"#,
            partner.workspace_id,
            REJECTED
        )
        .fetch_one(&state.db)
        .await?;
        let (last_contact, last_error, queued_events, queued_bytes, oldest, rejected) = (
            row.last_contact,
            row.last_error,
            row.queued_events,
            row.queued_bytes,
            row.oldest,
            row.rejected,
        );
        let window = chrono::Duration::seconds(partner.sync.keepalive_seconds as i64 + 10);
        figures.push(entente_proto::admin::PartnerFigures {
            workspace_id: partner.workspace_id.clone(),
            connected: last_contact.is_some_and(|at| chrono::Utc::now() - at < window),
            last_contact: last_contact
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            queued_events,
            queued_bytes,
            oldest_unacked_seconds: oldest.unwrap_or(0.0) as i64,
            rejected_events: rejected,
            last_error: last_error.unwrap_or_default(),
            queue_full: over_bound(partner, (queued_events, queued_bytes)),
            suspended: partner.suspended,
        });
    }
    Ok(figures)
}

/// A partner's link under its bandwidth cap, as a virtual clock: the time
/// the link is next free. Idle time builds up at most one second of burst.
#[derive(Debug)]
pub struct Pacer {
    free_at: std::time::Instant,
}

impl Pacer {
    /// How long to wait before sending `bytes` more at `limit` bytes per second.
    fn wait(&mut self, limit: u64, bytes: usize) -> std::time::Duration {
        let now = std::time::Instant::now();
        let burst = std::time::Duration::from_secs(1);
        let start = self.free_at.max(now.checked_sub(burst).unwrap_or(now));
        self.free_at = start + std::time::Duration::from_secs_f64(bytes as f64 / limit as f64);
        self.free_at.saturating_duration_since(now)
    }
}

/// Waits until `bytes` more may go to `partner` under its bandwidth cap
/// (events and files together); at once if it has none.
pub async fn pace(state: &crate::server::state::AppState, partner: &str, bytes: usize) {
    let limit = self::partner(&state.config(), partner)
        .and_then(|p| p.sync.bandwidth_bytes_per_second)
        .filter(|limit| *limit > 0);
    let Some(limit) = limit else {
        return;
    };
    let wait = {
        let mut pacers = state.pacers.lock().unwrap_or_else(|e| e.into_inner());
        pacers
            .entry(partner.to_string())
            .or_insert_with(|| Pacer {
                free_at: std::time::Instant::now(),
            })
            .wait(limit, bytes)
    };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}
