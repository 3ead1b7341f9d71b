//! `entente-sfu`'s HTTP side: WebSocket signalling at `/calls/{call}/ws`,
//! `/status`, `/metrics` and `/healthz`.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        Path, State,
    },
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use entente_crds::join_token;
use tokio::sync::mpsc;

use crate::{
    sfu::{Participant, Sfu},
    signal::{ClientMessage, Peer, ServerMessage},
};

/// How long a client has to send `join` after connecting.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest signalling message (an SDP with many tracks fits easily).
const MAX_MESSAGE: usize = 256 * 1024;

#[derive(Clone)]
pub struct Shared {
    pub sfu: Arc<Sfu>,
    /// The join-token key (never logged).
    pub key: Arc<Vec<u8>>,
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/calls/{call}/ws", get(upgrade))
        .route("/calls/{call}/ice", get(ice))
        .route("/calls/{call}/participants", get(participants))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(shared)
}

/// The Bearer token of a request, or "" (which no check accepts).
fn bearer(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

/// `GET /calls/{call}/participants`, for the workspace server only (a token
/// for the call whose user is [`join_token::SERVER`]): who is connected, so
/// the server can end calls whose people went without leaving.
async fn participants(
    State(shared): State<Shared>,
    Path(call): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let token = bearer(&headers);
    match join_token::verify(&shared.key, token, &call, now()) {
        Ok(claims) if claims.user == join_token::SERVER => {
            Json(serde_json::json!({ "participants": shared.sfu.participants(&call) }))
                .into_response()
        }
        _ => {
            let body = serde_json::json!({"code": "unauthorized", "message": "for the workspace server only"});
            (axum::http::StatusCode::UNAUTHORIZED, Json(body)).into_response()
        }
    }
}

/// `GET /calls/{call}/ice` with the join token as a Bearer token: the ICE
/// servers to use for this call, TURN credentials included (valid 12 hours:
/// a call outlives its join token).
async fn ice(
    State(shared): State<Shared>,
    Path(call): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let token = bearer(&headers);
    if let Err(refused) = join_token::verify(&shared.key, token, &call, now()) {
        shared.sfu.metrics.joins_refused.inc();
        let body = serde_json::json!({"code": "unauthorized", "message": refused.to_string()});
        return (axum::http::StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| match h.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => h,
        })
        .unwrap_or("127.0.0.1")
        .to_string();
    let servers = shared
        .sfu
        .ice_servers(&host, Duration::from_secs(12 * 3600));
    Json(serde_json::json!({ "iceServers": servers })).into_response()
}

async fn status(State(shared): State<Shared>) -> Json<crate::sfu::Status> {
    Json(shared.sfu.status())
}

async fn metrics(State(shared): State<Shared>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.sfu.metrics.render(),
    )
        .into_response()
}

async fn upgrade(
    State(shared): State<Shared>,
    Path(call): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(shared, call, socket))
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    let text = serde_json::to_string(message).expect("messages serialize");
    socket.send(Message::Text(text.into())).await.is_ok()
}

async fn refuse(shared: &Shared, mut socket: WebSocket, code: &str, message: String) {
    shared.sfu.metrics.joins_refused.inc();
    tracing::info!(code, "join refused: {message}");
    let _ = send(&mut socket, &ServerMessage::error(code, message)).await;
    let _ = socket.send(Message::Close(None)).await;
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn session(shared: Shared, call: String, mut socket: WebSocket) {
    let first = tokio::time::timeout(JOIN_TIMEOUT, socket.recv()).await;
    let (token, offer) = match first {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str(&text) {
            Ok(ClientMessage::Join { token, offer }) => (token, offer),
            Ok(_) => {
                return refuse(
                    &shared,
                    socket,
                    "protocol",
                    "the first message must be join".into(),
                )
                .await
            }
            Err(e) => {
                return refuse(
                    &shared,
                    socket,
                    "protocol",
                    format!("not a join message: {e}"),
                )
                .await
            }
        },
        _ => {
            return refuse(
                &shared,
                socket,
                "protocol",
                "no join message within 10 s".into(),
            )
            .await
        }
    };
    let claims = match join_token::verify(&shared.key, &token, &call, now()) {
        Ok(claims) if claims.user == join_token::SERVER => {
            return refuse(
                &shared,
                socket,
                "unauthorized",
                "the server's token admits no one".into(),
            )
            .await
        }
        Ok(claims) => claims,
        Err(refused) => return refuse(&shared, socket, "unauthorized", refused.to_string()).await,
    };
    let (out, mut outgoing) = mpsc::unbounded_channel();
    let peer = Peer {
        user: claims.user,
        name: claims.name,
    };
    let (participant, joined) = match shared.sfu.join(&call, peer, offer, out).await {
        Ok(joined) => joined,
        Err(refusal) => return refuse(&shared, socket, refusal.code, refusal.message).await,
    };
    if send(&mut socket, &joined).await {
        relay(&participant, &mut socket, &mut outgoing).await;
    }
    shared.sfu.leave(&call, &participant);
}

/// Carries messages both ways until the client leaves or the socket ends.
async fn relay(
    participant: &Arc<Participant>,
    socket: &mut WebSocket,
    outgoing: &mut mpsc::UnboundedReceiver<ServerMessage>,
) {
    loop {
        tokio::select! {
            message = outgoing.recv() => {
                let Some(message) = message else { return };
                if !send(socket, &message).await {
                    return;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => return,
                };
                match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Answer { sdp }) => {
                        if let Err(why) = participant.answered(sdp).await {
                            let _ = send(socket, &ServerMessage::error("bad_answer", why)).await;
                            return;
                        }
                    }
                    Ok(ClientMessage::Leave) => return,
                    Ok(ClientMessage::Join { .. }) => {
                        let _ = send(socket, &ServerMessage::error("protocol", "already joined")).await;
                        return;
                    }
                    Err(e) => {
                        let message = ServerMessage::error("protocol", format!("not a message: {e}"));
                        let _ = send(socket, &message).await;
                        return;
                    }
                }
            }
        }
    }
}
