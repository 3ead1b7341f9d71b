//! Live events: recorded with the change they describe, fanned out to every
//! replica through PostgreSQL `LISTEN/NOTIFY`, and replayed from the table to
//! a client that reconnects with its last sequence number.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use sqlx::{postgres::PgListener, PgPool, Postgres, Transaction};
use tokio::sync::broadcast;

/// The `NOTIFY` channel for stored events; the payload is the new sequence number.
const EVENTS_CHANNEL: &str = "entente_events";
/// The `NOTIFY` channel for typing indicators, which are never stored.
const TYPING_CHANNEL: &str = "entente_typing";
/// Key of the advisory lock that orders event writers.
const EVENT_LOCK: i64 = 0x656e_7465_6e74_6501;

/// One event as clients receive it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Absent for typing indicators (they are not replayed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub data: serde_json::Value,
}

/// Records an event in `tx`; it is delivered once the transaction commits.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    kind: &str,
    channel_id: Option<&str>,
    user_id: Option<&str>,
    data: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_LOCK)
        .execute(&mut **tx)
        .await?;
    let (seq,): (i64,) =
        sqlx::query_as("INSERT INTO events (kind, channel_id, user_id, data) VALUES ($1, $2, $3, $4) RETURNING seq")
            .bind(kind)
            .bind(channel_id)
            .bind(user_id)
            .bind(data)
            .fetch_one(&mut **tx)
            .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(seq.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Announces that `user_id` is typing in `channel_id`, to every replica.
pub async fn typing(
    db: &PgPool,
    channel_id: &str,
    user_id: &str,
    root_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    let payload =
        serde_json::json!({"channelId": channel_id, "userId": user_id, "rootId": root_id});
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(TYPING_CHANNEL)
        .bind(payload.to_string())
        .execute(db)
        .await?;
    Ok(())
}

/// Events recorded after `since`, in order, at most `limit`.
pub async fn since(db: &PgPool, since: i64, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, kind, channel_id, user_id, data FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The newest sequence number (0 when there is none).
pub async fn latest(db: &PgPool) -> Result<i64, sqlx::Error> {
    let (seq,): (Option<i64>,) = sqlx::query_as("SELECT max(seq) FROM events")
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
            .listen_all([EVENTS_CHANNEL, TYPING_CHANNEL])
            .await?;
        let mut cursor = latest(&db).await?;
        let hub = Hub { sender };
        let fanout = hub.sender.clone();
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    notification = listener.recv() => match notification {
                        Ok(n) if n.channel() == TYPING_CHANNEL => {
                            if let Ok(data) = serde_json::from_str::<serde_json::Value>(n.payload()) {
                                let _ = fanout.send(Fanned::new(Event {
                                    seq: None,
                                    kind: "typing".into(),
                                    channel_id: data["channelId"].as_str().map(String::from),
                                    user_id: None,
                                    data,
                                }));
                            }
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "event listener lost its connection; catching up by polling");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    },
                    _ = poll.tick() => {}
                }
                // Drain everything newer than what was already fanned out.
                loop {
                    match since(&db, cursor, 500).await {
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
}
