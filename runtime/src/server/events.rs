//! Live events: recorded with the change they describe, numbered once they
//! have committed ([`Sequencer`]), fanned out to every replica through
//! PostgreSQL `LISTEN/NOTIFY`, and replayed from the table to a client that
//! reconnects with its last sequence number.
//!
//! Why the numbering is right without a lock across commits: a writer
//! inserts its event without a number and commits when it likes —
//! concurrent posts commit in parallel. Numbers are given only to events
//! already committed, by one sequencer per database, in transactions of its
//! own that run one after another, each numbering densely from the last
//! number given. So a number becomes visible only once every smaller number
//! is (given in an earlier committed transaction, or the same one): readers,
//! which read `seq > cursor`, never pass a number that could still appear,
//! numbers have no gaps and never change, and a client resuming from any
//! `seq` misses nothing and gets nothing twice. An event written after
//! another was acknowledged was inserted after that one committed, so it is
//! numbered after it (within a batch, by insertion order). One `NOTIFY`
//! announces each batch.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use sqlx::{postgres::PgListener, PgPool, Postgres, Transaction};
use tokio::sync::broadcast;

use super::db::{calls::Call, posts::Post};

/// The `NOTIFY` channel for stored events; the payload is the new sequence number.
const EVENTS_CHANNEL: &str = "entente_events";
/// The `NOTIFY` channel for typing indicators, which are never stored.
const TYPING_CHANNEL: &str = "entente_typing";
/// The `NOTIFY` channel for an agent's answer as it is written, never stored.
const STREAMING_CHANNEL: &str = "entente_streaming";
/// The `NOTIFY` channel saying a user's tokens were revoked (the payload is
/// the user id): their open WebSockets check theirs, and close if it is gone.
const REVOKED_CHANNEL: &str = "entente_revoked";
/// The `type` of the (never stored, never sent) event a revocation fans out as.
pub const SESSIONS_REVOKED: &str = "sessions_revoked";
/// Key of the advisory lock the sequencing replica holds.
const SEQUENCER_LOCK: i64 = 0x656e_7465_6e74_6502;
/// Most events numbered in one statement.
const SEQUENCE_BATCH: i64 = 5000;
/// How long the sequencer waits for a wake-up before looking anyway (for
/// events written by other replicas, which cannot wake it).
const SEQUENCE_POLL: Duration = Duration::from_millis(20);

/// Woken after a commit in this process, so events written here are
/// numbered at once.
static WRITTEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Something may have been written: the sequencer looks now.
pub fn written() {
    WRITTEN.notify_one();
}

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
    /// A post translated into a language its readers read (or why not).
    Translated(super::translate::Translation),
    /// A channel's admin turned its translation on or off.
    TranslationSwitched(TranslationSwitch),
    /// More of an agent's answer, as the model writes it; never stored.
    /// The answer arrives as a `posted` event with the same `postId` once
    /// it is complete.
    Streaming(Streaming),
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranslationSwitch {
    pub channel_id: String,
    pub enabled: bool,
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

/// A piece of an agent's answer being written.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Streaming {
    pub channel_id: String,
    /// The id the answer will have when it is posted.
    pub post_id: String,
    /// The thread it answers in.
    pub root_id: Option<String>,
    /// The agent.
    pub user_id: String,
    /// 0, 1, 2, …: pieces in order; `text` is appended to the pieces before it.
    pub index: u32,
    pub text: String,
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
            Change::Streaming(s) => &s.channel_id,
            Change::Translated(t) => &t.channel_id,
            Change::TranslationSwitched(t) => &t.channel_id,
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

/// Records `change` in `tx`; once the transaction commits, the
/// [`Sequencer`] numbers it and it is delivered.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change,
) -> Result<(), sqlx::Error> {
    record_many(tx, std::slice::from_ref(change)).await
}

/// Records `changes` in `tx`, in this order, in one statement.
pub async fn record_many(
    tx: &mut Transaction<'_, Postgres>,
    changes: &[Change],
) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut kinds = Vec::with_capacity(changes.len());
    let mut datas = Vec::with_capacity(changes.len());
    for change in changes {
        let (kind, data) = change.parts();
        kinds.push(kind);
        datas.push(data);
    }
    let channels: Vec<&str> = changes.iter().map(Change::channel_id).collect();
    let users: Vec<Option<&str>> = changes.iter().map(Change::user_id).collect();
    // Inserted in the order given: `id` is the order they are numbered in.
    sqlx::query!(
        "INSERT INTO events (kind, channel_id, user_id, data)
         SELECT kind, channel_id, user_id, data
         FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
              WITH ORDINALITY AS e(kind, channel_id, user_id, data, n)
         ORDER BY n",
        &kinds,
        &channels as &[&str],
        &users as &[Option<&str>],
        &datas
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Numbers committed events, on one replica at a time (the one holding
/// [`SEQUENCER_LOCK`] on its own connection, which also does the
/// numbering: if the connection is lost, so is the lock, and another
/// replica takes over; the unique index on `seq` refuses a number given
/// twice).
pub struct Sequencer;

impl Sequencer {
    /// Runs on every replica: waits to hold the lock, then numbers events
    /// as they commit until the connection fails, then waits again.
    pub async fn run(db: PgPool) {
        loop {
            if let Err(error) = Self::lead(&db).await {
                tracing::warn!(%error, "event sequencer stopped; retrying");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Holds the lock and numbers events, until an error.
    async fn lead(db: &PgPool) -> Result<(), sqlx::Error> {
        let mut connection = db.acquire().await?.detach();
        loop {
            let held = sqlx::query_scalar!(
                r#"SELECT pg_try_advisory_lock($1) AS "held!""#,
                SEQUENCER_LOCK
            )
            .fetch_one(&mut connection)
            .await?;
            if held {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut last =
            sqlx::query_scalar!(r#"SELECT COALESCE(max(seq), 0) AS "last!" FROM events"#)
                .fetch_one(&mut connection)
                .await?;
        loop {
            let numbered = Self::number(&mut connection, last).await?;
            match numbered {
                Some(new_last) => last = new_last,
                // Nothing to number: wait for a commit here, or look again soon.
                None => {
                    let _ = tokio::time::timeout(SEQUENCE_POLL, WRITTEN.notified()).await;
                }
            }
        }
    }

    /// Numbers the next batch after `last` and announces it; the new last
    /// number, or `None` if there was nothing to number.
    async fn number(
        connection: &mut sqlx::PgConnection,
        last: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        use sqlx::Connection;
        let mut tx = connection.begin().await?;
        // Only what has committed is visible, so only that is numbered.
        let numbered = sqlx::query_scalar!(
            r#"WITH next AS (
                   SELECT id, row_number() OVER (ORDER BY id) AS n FROM events
                   WHERE seq IS NULL ORDER BY id LIMIT $2)
               UPDATE events e SET seq = $1 + next.n FROM next WHERE e.id = next.id
               RETURNING e.seq AS "seq!""#,
            last,
            SEQUENCE_BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        let Some(new_last) = numbered.iter().max().copied() else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query!(
            "SELECT pg_notify($1, $2)",
            EVENTS_CHANNEL,
            new_last.to_string()
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(new_last))
    }
}

/// Announces `typing` to every replica.
pub async fn typing(db: &PgPool, typing: Typing) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_string(&typing).expect("typing serializes");
    sqlx::query!("SELECT pg_notify($1, $2)", TYPING_CHANNEL, payload)
        .execute(db)
        .await?;
    Ok(())
}

/// Announces a piece of an agent's answer to every replica.
pub async fn streaming(db: &PgPool, piece: &Streaming) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_string(piece).expect("streaming serializes");
    sqlx::query!("SELECT pg_notify($1, $2)", STREAMING_CHANNEL, payload)
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
/// The last number once every event committed before this call is
/// numbered (waiting for the [`Sequencer`], at most a few seconds): a
/// stream that starts there has nothing committed before it still to come.
pub async fn settled(db: &PgPool) -> Result<i64, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_millis(1);
    loop {
        let pending = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM events WHERE seq IS NULL) AS "pending!""#
        )
        .fetch_one(db)
        .await?;
        if !pending || tokio::time::Instant::now() > deadline {
            return latest(db).await;
        }
        written();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

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
    pub async fn start(
        db: PgPool,
        sessions: Arc<super::sessions::Sessions>,
    ) -> Result<Hub, sqlx::Error> {
        let (sender, _) = broadcast::channel(4096);
        let mut listener = PgListener::connect_with(&db).await?;
        listener
            .listen_all([
                EVENTS_CHANNEL,
                TYPING_CHANNEL,
                STREAMING_CHANNEL,
                REVOKED_CHANNEL,
            ])
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
                        Ok(n) if n.channel() == STREAMING_CHANNEL => {
                            if let Ok(piece) = serde_json::from_str::<Streaming>(n.payload()) {
                                let _ = fanout.send(Fanned::new(Change::Streaming(piece).unsequenced()));
                            }
                            continue;
                        }
                        Ok(n) if n.channel() == REVOKED_CHANNEL => {
                            sessions.forget(n.payload());
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
                            // Changes to sessions may have gone unheard.
                            sessions.clear();
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
            "streaming",
            "translated",
            "translation_switched",
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
