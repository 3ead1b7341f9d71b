//! `GET /api/v1/ws`: the live event stream of one user.
//!
//! Authenticate with `Authorization: Bearer …` or, from a browser (which
//! cannot set that header on a WebSocket), by offering the subprotocols
//! `entente` and `bearer.<token>`: the server selects `entente`. Without
//! either, or with a bad token, the answer is 401 before any upgrade.
//! Connect with `?since=SEQ` (the `seq` of the last event received) to first
//! get every event missed since, then live ones: a reconnecting client
//! misses nothing. Send `{"type": "typing", "channelId": "…"}` to show you
//! are typing (at most one a second counts).
//!
//! Each message is an [`Event`]: `{seq, type, channelId, userId, data}`,
//! `type` and `data` being one [`events::Change`] (in the OpenAPI document
//! as the `Event` and `EventChange` schemas). Besides events, the server
//! sends `{"type": "hello", "seq", "userId"}` first, and
//! `{"type": "status", "database": "unavailable" | "available"}` when it
//! loses or regains its database (posting fails meanwhile; the stream
//! resumes exactly).
//!
//! Limits: a client's message is at most 16 KiB. A client that does not
//! take what it is sent within `limits.connections.websocketSendTimeoutSeconds`
//! is disconnected; it reconnects with `since` and misses nothing.

use std::{collections::HashSet, time::Duration};

/// Largest message (and frame) a client may send: auth and typing notices
/// are a few hundred bytes.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// The read buffer of each socket.
const READ_BUFFER: usize = 4 * 1024;
/// The subprotocol a browser offers beside its token.
const PROTOCOL: &str = "entente";

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        State,
    },
    http::{HeaderMap, HeaderValue},
    response::Response,
};
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::server::{
    api::extract::{Query, Valid},
    auth::{self, Caller},
    db,
    error::{ApiError, ApiResult},
    events::{self, Event},
    state::AppState,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Connect {
    /// The `seq` of the last event received: what came after it is sent first.
    #[param(minimum = 0)]
    pub since: Option<i64>,
}

impl Valid for Connect {
    fn valid(&self) -> ApiResult<()> {
        if self.since.is_some_and(|s| s < 0) {
            return Err(ApiError::invalid(
                "since",
                "since is the seq of the last event received, 0 or more",
            ));
        }
        Ok(())
    }
}

#[utoipa::path(get, path = "/api/v1/ws", params(Connect), responses((status = 101, description = "the live event stream (WebSocket); see the module documentation")), security(("bearer" = [])))]
pub async fn connect(
    State(state): State<AppState>,
    Query(query): Query<Connect>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let token = match auth::bearer(&headers).or_else(|| protocol_token(&headers)) {
        Some(token) => token,
        None => {
            // The session cookie: any page can open a WebSocket to any
            // site, and the browser sends the cookie along; only the
            // client's own page may use it.
            let token = auth::cookie(&headers, auth::SESSION_COOKIE)
                .ok_or_else(ApiError::unauthenticated)?;
            if !same_origin(&headers) {
                return Err(ApiError::forbidden(
                    "the session cookie opens the live stream only from the workspace's own pages",
                ));
            }
            token
        }
    };
    let caller = auth::authenticate(&state, token).await?;
    state.rate_limit().check(&caller.user_id, &state.metrics)?;
    // Clients send little (typing, auth): a small read buffer instead of the
    // library's 128 KiB, which every idle socket held.
    let upgrade = upgrade
        .protocols([PROTOCOL])
        .read_buffer_size(READ_BUFFER)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .max_message_size(MAX_CLIENT_MESSAGE);
    Ok(upgrade.on_upgrade(move |socket| async move {
        if let Err(e) = session(state, socket, caller, query.since).await {
            tracing::debug!(error = %e, "websocket closed");
        }
    }))
}

struct DecOnDrop<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for DecOnDrop<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Whether the `Origin` a browser sent is the host it asked: the page
/// opening the socket is the workspace's own.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    match (
        text(axum::http::header::ORIGIN),
        text(axum::http::header::HOST),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// The token a browser offers as the subprotocol `bearer.<token>`.
fn protocol_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("bearer."))
        .filter(|token| !token.is_empty())
}

/// Whether `user` receives `event`, given the channels they are a member of.
pub fn delivers(event: &Event, user: &str, member_of: &HashSet<String>) -> bool {
    event.user_id.as_deref() == Some(user)
        || event
            .channel_id
            .as_ref()
            .is_some_and(|c| member_of.contains(c))
}

/// Keeps `member_of` current as membership events for `user` pass by.
fn track_membership(event: &Event, user: &str, member_of: &mut HashSet<String>) {
    if event.user_id.as_deref() != Some(user) {
        return;
    }
    if let Some(channel) = &event.channel_id {
        match event.kind.as_str() {
            events::MEMBER_ADDED => {
                member_of.insert(channel.clone());
            }
            events::MEMBER_REMOVED => {
                member_of.remove(channel);
            }
            _ => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("socket: {0}")]
    Socket(#[from] axum::Error),
    #[error("database: {0}")]
    Database(#[from] db::Error),
    #[error("the client took more than {0:?} to take a message")]
    TooSlow(Duration),
}

impl From<sqlx::Error> for SessionError {
    fn from(error: sqlx::Error) -> Self {
        SessionError::Database(error.into())
    }
}

/// A client's socket, which must take each message within `timeout`.
struct Client {
    socket: WebSocket,
    timeout: Duration,
}

impl Client {
    /// Writes `message` without flushing ([`Client::flush`] sends what was
    /// written).
    async fn feed(&mut self, message: Message) -> Result<(), SessionError> {
        use futures_util::SinkExt;
        within(self.timeout, self.socket.feed(message)).await
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        use futures_util::SinkExt;
        within(self.timeout, SinkExt::flush(&mut self.socket)).await
    }

    /// Writes `message` and flushes.
    async fn send(&mut self, message: Message) -> Result<(), SessionError> {
        within(self.timeout, self.socket.send(message)).await
    }
}

/// `write`, unless the client does not take it within `timeout`.
async fn within(
    timeout: Duration,
    write: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), SessionError> {
    match tokio::time::timeout(timeout, write).await {
        Ok(written) => Ok(written?),
        Err(_) => Err(SessionError::TooSlow(timeout)),
    }
}

async fn session(
    state: AppState,
    socket: WebSocket,
    caller: Caller,
    since: Option<i64>,
) -> Result<(), SessionError> {
    let timeout = state
        .config()
        .limits
        .connections
        .websocket_send_timeout_seconds;
    let mut socket = Client {
        socket,
        timeout: Duration::from_secs(timeout.max(1).into()),
    };
    // Held until the session ends: shutdown waits for it.
    let _draining = state.sessions.clone();
    state.metrics.websockets.inc();
    let _gauge = DecOnDrop(&state.metrics.websockets);
    let result = stream(&state, &mut socket, caller, since).await;
    if let Err(SessionError::Database(_)) = &result {
        // The events cannot be read now: say why, and close so the client
        // comes back (with `since`) once the database is.
        let status = serde_json::json!({"type": "status", "database": "unavailable"});
        let _ = socket.send(Message::Text(status.to_string().into())).await;
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1013,
                reason: "the database is unavailable; reconnect with since".into(),
            })))
            .await;
    }
    result
}

/// The session's stream: `hello`, what was missed, then live events.
async fn stream(
    state: &AppState,
    socket: &mut Client,
    caller: Caller,
    since: Option<i64>,
) -> Result<(), SessionError> {
    let mut database = state.hub.database();
    // Subscribe before reading the backlog, so nothing falls between the two.
    let mut live = state.hub.subscribe();
    let mut member_of: HashSet<String> = db::members::channels_of(&state.db, &caller.user_id)
        .await?
        .into_iter()
        .collect();
    // `hello` says where the stream starts: every event after `seq` follows,
    // the missed ones first.
    let start = match since {
        Some(since) => since,
        None => events::settled(&state.db).await?,
    };
    let hello = serde_json::json!({"type": "hello", "seq": start, "userId": caller.user_id});
    socket.send(Message::Text(hello.to_string().into())).await?;
    let mut last = replay(state, socket, &caller, &mut member_of, start).await?;

    let mut shutdown = state.shutdown.clone();
    let mut keepalive = tokio::time::interval(Duration::from_secs(30));
    keepalive.tick().await;
    loop {
        tokio::select! {
            received = live.recv() => {
                // Take what else is already waiting too, and write it all
                // with one flush: one write to the socket per burst, not
                // per event.
                let mut next = Some(received);
                let mut taken = 0;
                while let Some(received) = next.take() {
                    if !take(state, socket, &caller, &mut member_of, &mut last, received).await? {
                        return Ok(());
                    }
                    taken += 1;
                    if taken < BURST {
                        next = match live.try_recv() {
                            Ok(event) => Some(Ok(event)),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                        };
                    }
                }
                socket.flush().await?;
            },
            incoming = socket.socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => handle_client_message(state, &caller, &member_of, &text).await,
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            },
            _ = keepalive.tick() => socket.send(Message::Ping(Vec::new().into())).await?,
            Ok(()) = database.changed() => {
                let up = *database.borrow_and_update();
                let status = serde_json::json!({"type": "status", "database": if up { "available" } else { "unavailable" }});
                socket.send(Message::Text(status.to_string().into())).await?;
            }
            _ = shutdown.changed() => {
                let _ = socket.socket.send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down; reconnect with since".into() }))).await;
                return Ok(());
            }
        }
    }
}

/// Events written to a socket before one flush, at most.
const BURST: usize = 256;

/// Takes one item of the live stream: writes it (unflushed) if the user
/// receives it; `false` when the session is to end.
async fn take(
    state: &AppState,
    socket: &mut Client,
    caller: &Caller,
    member_of: &mut HashSet<String>,
    last: &mut i64,
    received: Result<std::sync::Arc<events::Fanned>, RecvError>,
) -> Result<bool, SessionError> {
    match received {
        Ok(event) if event.event.kind == events::SESSIONS_REVOKED => {
            // Some of this user's tokens were revoked (a logout, a password
            // change, deactivation, the end of a guest's access): is this
            // session's? What the same change recorded (leaving channels)
            // is delivered first.
            if event.event.user_id.as_deref() == Some(caller.user_id.as_str())
                && !db::tokens::live(&state.db, &caller.token_id).await?
            {
                events::settled(&state.db).await?;
                replay(state, socket, caller, member_of, *last).await?;
                let _ = socket
                    .socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 4001,
                        reason: "this session ended; sign in again".into(),
                    })))
                    .await;
                return Ok(false);
            }
        }
        Ok(event) => {
            if let Some(seq) = event.event.seq {
                if seq <= *last {
                    return Ok(true); // already sent from the backlog
                }
                *last = seq;
            }
            send_if_visible(socket, &event.event, Some(&event.json), caller, member_of).await?;
        }
        Err(RecvError::Lagged(_)) => {
            // Too slow for the live stream: catch up from the table.
            *last = replay(state, socket, caller, member_of, *last).await?;
        }
        Err(RecvError::Closed) => return Ok(false),
    }
    Ok(true)
}

/// Sends every visible event after `since`; returns the last sequence number seen.
async fn replay(
    state: &AppState,
    socket: &mut Client,
    caller: &Caller,
    member_of: &mut HashSet<String>,
    mut since: i64,
) -> Result<i64, SessionError> {
    loop {
        let batch = events::since(&state.db, since, 500).await?;
        if batch.is_empty() {
            return Ok(since);
        }
        for event in batch {
            since = event.seq.unwrap_or(since);
            send_if_visible(socket, &event, None, caller, member_of).await?;
        }
        socket.flush().await?;
    }
}

/// Writes `event` (unflushed) if this user receives it; `json` is its serialization when
/// the hub already made one (shared by every subscriber).
async fn send_if_visible(
    socket: &mut Client,
    event: &Event,
    json: Option<&axum::extract::ws::Utf8Bytes>,
    caller: &Caller,
    member_of: &mut HashSet<String>,
) -> Result<(), SessionError> {
    // An event adding this user makes the channel theirs before delivery;
    // one removing them is delivered (to them) and then stops the channel.
    if event.kind == "member_added" {
        track_membership(event, &caller.user_id, member_of);
    }
    if delivers(event, &caller.user_id, member_of)
        && !(event.kind == "typing" && event.data["userId"] == caller.user_id.as_str())
    {
        let text = match json {
            Some(json) => json.clone(),
            None => serde_json::to_string(event)
                .expect("events serialize")
                .into(),
        };
        socket.feed(Message::Text(text)).await?;
    }
    track_membership(event, &caller.user_id, member_of);
    Ok(())
}

async fn handle_client_message(
    state: &AppState,
    caller: &Caller,
    member_of: &HashSet<String>,
    text: &str,
) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    if value["type"] == "typing" {
        if let Some(channel) = value["channelId"].as_str() {
            // Typing is announced only in channels one belongs to, and
            // at most about once a second per user.
            if member_of.contains(channel) && state.typing.allows(&caller.user_id) {
                let typing = events::Typing {
                    channel_id: channel.to_string(),
                    user_id: caller.user_id.clone(),
                    root_id: value["rootId"].as_str().map(String::from),
                };
                let _ = events::typing(&state.db, typing).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, channel: Option<&str>, user: Option<&str>) -> Event {
        Event {
            seq: Some(1),
            kind: kind.into(),
            channel_id: channel.map(String::from),
            user_id: user.map(String::from),
            data: serde_json::Value::Null,
        }
    }

    #[test]
    fn events_reach_members_and_the_user_they_name() {
        let member_of: HashSet<String> = ["ops".to_string()].into();
        assert!(delivers(
            &event("posted", Some("ops"), None),
            "bob",
            &member_of
        ));
        assert!(!delivers(
            &event("posted", Some("intel"), None),
            "bob",
            &member_of
        ));
        assert!(delivers(
            &event("member_removed", Some("intel"), Some("bob")),
            "bob",
            &member_of
        ));
        assert!(!delivers(
            &event("member_removed", Some("intel"), Some("carol")),
            "bob",
            &member_of
        ));
    }

    #[test]
    fn membership_follows_the_events_about_oneself() {
        let mut member_of = HashSet::new();
        track_membership(
            &event("member_added", Some("ops"), Some("carol")),
            "bob",
            &mut member_of,
        );
        assert!(member_of.is_empty());
        track_membership(
            &event("member_added", Some("ops"), Some("bob")),
            "bob",
            &mut member_of,
        );
        assert!(member_of.contains("ops"));
        track_membership(
            &event("member_removed", Some("ops"), Some("bob")),
            "bob",
            &mut member_of,
        );
        assert!(member_of.is_empty());
    }
}
