//! Live events: recorded with the change they describe, fanned out to every
//! replica through PostgreSQL `LISTEN/NOTIFY`, and replayed from the table to
//! a client that reconnects with its last sequence number.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use sqlx::{postgres::PgListener, PgPool, Postgres, Transaction};
use tokio::sync::broadcast;

use super::db::{calls::Call, posts::Post};

/// The `NOTIFY` channel for stored events; the payload is the new sequence number.
const EVENTS_CHANNEL: &str = "entente_events";
/// The `NOTIFY` channel for typing indicators, which are never stored.
const TYPING_CHANNEL: &str = "entente_typing";
/// The `NOTIFY` channel saying a user's tokens were revoked (the payload is
/// the user id): their open WebSockets check theirs, and close if it is gone.
const REVOKED_CHANNEL: &str = "entente_revoked";
/// The `type` of the (never stored, never sent) event a revocation fans out as.
pub const SESSIONS_REVOKED: &str = "sessions_revoked";
/// Key of the advisory lock that orders event writers.
const EVENT_LOCK: i64 = 0x656e_7465_6e74_6501;

/// Every kind of live event, with what it carries. Writers record one of
/// these; clients receive it as `{seq, type, channelId, userId, data}`
/// ([`Event`]), `type` and `data` being this enum's tag and content.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
#[schema(as = EventChange)]
pub enum Change {
    /// A new post or thread reply, from any source (a local user, a
    /// partner, a call notice).
    Posted(Post),
    /// A post's text changed, or it was pinned or unpinned.
    Edited(Post),
    /// A post was deleted (its message is empty now).
    Deleted(Post),
    ReactionAdded(Post),
    ReactionRemoved(Post),
    /// A partner's file attached to the post arrived, or will not.
    FilesChanged(Post),
    /// Someone joined or was added; they receive it too.
    MemberAdded(MemberChange),
    /// Someone left or was removed (with why, when a policy removed them);
    /// they receive it too, and their subscription to the channel ends.
    MemberRemoved(MemberChange),
    ChannelArchived(ChannelRef),
    /// Renamed, or its purpose or header changed.
    ChannelUpdated(ChannelDescription),
    CallStarted(Call),
    /// Someone joined or left the call.
    CallUpdated(Call),
    CallEnded(Call),
    /// Someone is typing; never stored, so never replayed.
    Typing(Typing),
}

/// The `type` of a [`Change::MemberAdded`].
pub const MEMBER_ADDED: &str = "member_added";
/// The `type` of a [`Change::MemberRemoved`].
pub const MEMBER_REMOVED: &str = "member_removed";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    pub channel_id: String,
    pub user_id: String,
    /// `admin` or `member`, for an addition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Why, for a removal a policy or an expiry made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRef {
    pub channel_id: String,
}

/// What a channel is called and says about itself, as it now is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelDescription {
    pub channel_id: String,
    pub name: Option<String>,
    pub display_name: String,
    pub purpose: String,
    pub header: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub channel_id: String,
    pub user_id: String,
    /// The thread, when typing a reply.
    pub root_id: Option<String>,
}

impl Change {
    /// The channel whose members receive it.
    pub fn channel_id(&self) -> &str {
        match self {
            Change::Posted(p)
            | Change::Edited(p)
            | Change::Deleted(p)
            | Change::ReactionAdded(p)
            | Change::ReactionRemoved(p)
            | Change::FilesChanged(p) => &p.channel_id,
            Change::MemberAdded(m) | Change::MemberRemoved(m) => &m.channel_id,
            Change::ChannelArchived(c) => &c.channel_id,
            Change::ChannelUpdated(c) => &c.channel_id,
            Change::CallStarted(c) | Change::CallUpdated(c) | Change::CallEnded(c) => &c.channel_id,
            Change::Typing(t) => &t.channel_id,
        }
    }

    /// A user who receives it even when not (or no longer) a member.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Change::MemberAdded(m) | Change::MemberRemoved(m) => Some(&m.user_id),
            _ => None,
        }
    }

    /// Its `type` and `data`, as stored and sent.
    fn parts(&self) -> (String, serde_json::Value) {
        let mut tagged = match serde_json::to_value(self).expect("events serialize") {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("an adjacently tagged enum serializes as an object"),
        };
        let kind = match tagged.remove("type") {
            Some(serde_json::Value::String(kind)) => kind,
            _ => unreachable!("the tag is a string"),
        };
        (kind, tagged.remove("data").unwrap_or_default())
    }

    /// As a client receives it, without a sequence number.
    fn unsequenced(&self) -> Event {
        let (kind, data) = self.parts();
        Event {
            seq: None,
            kind,
            channel_id: Some(self.channel_id().to_string()),
            user_id: self.user_id().map(String::from),
            data,
        }
    }
}

/// One event as clients receive it (and as it is stored): a [`Change`]'s
/// `type` and `data`, with its sequence number and whom it concerns.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Absent for typing indicators (they are not replayed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// The tag of a [`Change`].
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The content of a [`Change`] of that type.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Records `change` in `tx`; it is delivered once the transaction commits.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change,
) -> Result<(), sqlx::Error> {
    let (kind, data) = change.parts();
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", EVENT_LOCK)
        .execute(&mut **tx)
        .await?;
    let seq = sqlx::query_scalar!(
        "INSERT INTO events (kind, channel_id, user_id, data) VALUES ($1, $2, $3, $4) RETURNING seq",
        kind,
        change.channel_id(),
        change.user_id(),
        data
    )
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query!("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, seq.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Announces `typing` to every replica.
pub async fn typing(db: &PgPool, typing: Typing) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_string(&typing).expect("typing serializes");
    sqlx::query!("SELECT pg_notify($1, $2)", TYPING_CHANNEL, payload)
        .execute(db)
        .await?;
    Ok(())
}

/// Events recorded after `since`, in order, at most `limit`.
/// Tells every replica, when `executor`'s transaction commits, that some
/// of `user_id`'s tokens were revoked.
pub async fn sessions_revoked<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_notify($1, $2)", REVOKED_CHANNEL, user_id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn since(db: &PgPool, since: i64, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    // `seq?`: a recorded event always has one; the type leaves it optional
    // for typing indicators, which are never recorded.
    sqlx::query_as!(
        Event,
        r#"SELECT seq AS "seq?", kind, channel_id, user_id, data FROM events
           WHERE seq > $1 ORDER BY seq LIMIT $2"#,
        since,
        limit
    )
    .fetch_all(db)
    .await
}

/// The newest sequence number (0 when there is none).
pub async fn latest(db: &PgPool) -> Result<i64, sqlx::Error> {
    let seq = sqlx::query_scalar!("SELECT max(seq) FROM events")
        .fetch_one(db)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// An event on its way to the subscribers, serialized once for all of them.
pub struct Fanned {
    pub event: Event,
    pub json: axum::extract::ws::Utf8Bytes,
}

impl Fanned {
    fn new(event: Event) -> Arc<Fanned> {
        let json = serde_json::to_string(&event)
            .expect("events serialize")
            .into();
        Arc::new(Fanned { event, json })
    }
}

/// This replica's fan-out: one database listener, any number of subscribers.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<Arc<Fanned>>,
    /// Whether the hub last reached the database; WebSockets tell their
    /// clients when it changes.
    database: tokio::sync::watch::Sender<bool>,
}

impl Hub {
    /// Starts listening and returns the hub. Notifications only say "there is
    /// something new"; the events themselves are read from the table in order,
    /// so a lost notification (a listener reconnect) delays an event by at most
    /// the poll interval and never drops it.
    pub async fn start(db: PgPool) -> Result<Hub, sqlx::Error> {
        let (sender, _) = broadcast::channel(4096);
        let mut listener = PgListener::connect_with(&db).await?;
        listener
            .listen_all([EVENTS_CHANNEL, TYPING_CHANNEL, REVOKED_CHANNEL])
            .await?;
        let mut cursor = latest(&db).await?;
        let hub = Hub {
            sender,
            database: tokio::sync::watch::channel(true).0,
        };
        let fanout = hub.sender.clone();
        let reachable = hub.database.clone();
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    notification = listener.recv() => match notification {
                        Ok(n) if n.channel() == TYPING_CHANNEL => {
                            if let Ok(typing) = serde_json::from_str::<Typing>(n.payload()) {
                                let _ = fanout.send(Fanned::new(Change::Typing(typing).unsequenced()));
                            }
                            continue;
                        }
                        Ok(n) if n.channel() == REVOKED_CHANNEL => {
                            let _ = fanout.send(Fanned::new(Event {
                                seq: None,
                                kind: SESSIONS_REVOKED.into(),
                                channel_id: None,
                                user_id: Some(n.payload().to_string()),
                                data: serde_json::Value::Null,
                            }));
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "event listener lost its connection; catching up by polling");
                            reachable.send_if_modified(|up| std::mem::replace(up, false));
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    },
                    _ = poll.tick() => {}
                }
                // Drain everything newer than what was already fanned out.
                loop {
                    let read = since(&db, cursor, 500).await;
                    let up = read.is_ok();
                    reachable.send_if_modified(|was| std::mem::replace(was, up) != up);
                    match read {
                        Ok(events) if events.is_empty() => break,
                        Ok(events) => {
                            for event in events {
                                cursor = event.seq.unwrap_or(cursor);
                                let _ = fanout.send(Fanned::new(event));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read events");
                            break;
                        }
                    }
                }
            }
        });
        Ok(hub)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Fanned>> {
        self.sender.subscribe()
    }

    /// Connected subscribers on this replica.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Whether the database is reachable, as the hub last found it.
    pub fn database(&self) -> tokio::sync::watch::Receiver<bool> {
        self.database.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_stream_is_described_in_the_openapi_document() {
        let document = serde_json::to_value(crate::server::openapi()).unwrap();
        let schemas = &document["components"]["schemas"];
        assert!(schemas["Event"].is_object(), "{schemas}");
        let change = schemas["EventChange"].to_string();
        for kind in [
            "posted",
            "edited",
            "deleted",
            "reaction_added",
            "reaction_removed",
            "files_changed",
            MEMBER_ADDED,
            MEMBER_REMOVED,
            "channel_archived",
            "call_started",
            "call_updated",
            "call_ended",
            "typing",
        ] {
            assert!(
                change.contains(&format!("\"{kind}\"")),
                "{kind} is not in {change}"
            );
        }
    }

    #[test]
    fn changes_are_sent_as_type_and_data() {
        let change = Change::MemberRemoved(MemberChange {
            channel_id: "c".into(),
            user_id: "u".into(),
            role: None,
            reason: Some("left at their workspace".into()),
        });
        let event = change.unsequenced();
        assert_eq!(event.kind, MEMBER_REMOVED);
        assert_eq!(event.channel_id.as_deref(), Some("c"));
        assert_eq!(event.user_id.as_deref(), Some("u"));
        assert_eq!(
            event.data,
            serde_json::json!({"channelId": "c", "userId": "u", "reason": "left at their workspace"})
        );
        let added = Change::MemberAdded(MemberChange {
            channel_id: "c".into(),
            user_id: "u".into(),
            role: Some("admin".into()),
            reason: None,
        });
        assert_eq!(added.unsequenced().kind, MEMBER_ADDED);
    }
}
