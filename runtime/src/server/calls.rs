//! Calls: a channel's members start, join and leave its call; the server
//! keeps each call on one SFU node (the least loaded healthy one when it
//! starts), issues short-lived join tokens bound to the call, the user and
//! an expiry, posts the call's start and end into the channel and tells the
//! channel's clients over the WebSocket (`call_started`, `call_updated`,
//! `call_ended`). Anyone else gets nothing: the channel is not theirs to see.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entente_crds::{config::CallsConfig, join_token};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};

use super::{
    db::{self, new_id},
    error::{ApiError, ApiResult},
    events::{self, Change},
    posts,
    state::AppState,
};

pub use super::db::calls::Call;

/// What a participant needs to join the media: where, and the token.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub call: Call,
    /// The SFU's signalling WebSocket for this call.
    pub url: String,
    /// Send it in the SFU's `join` message; it admits the caller to this
    /// call only, until `expiresAt`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// The calls section of the config, or why calls cannot be used here.
pub fn configured(state: &AppState) -> ApiResult<CallsConfig> {
    state.config().calls.clone().ok_or_else(|| {
        ApiError::forbidden(
            "calls are not set up in this workspace: an admin names a CallsCluster in the Workspace's spec.features.calls.callsClusterRef (with `entente up`, a CallsCluster declared in the same manifests)",
        )
    })
}

async fn load(
    db: impl sqlx::PgExecutor<'_>,
    channel_id: &str,
) -> Result<Option<(Call, String)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT c.id, c.channel_id, c.started_by, c.started_at, c.ended_at, c.node,
                  COALESCE(array_agg(p.user_id ORDER BY p.joined_at) FILTER (WHERE p.user_id IS NOT NULL), '{}') AS "participants!"
           FROM calls c LEFT JOIN call_participants p ON p.call_id = c.id AND p.left_at IS NULL
           WHERE c.channel_id = $1 AND c.ended_at IS NULL
           GROUP BY c.id"#,
        channel_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| {
        let call = Call {
            id: row.id,
            channel_id: row.channel_id,
            started_by: row.started_by,
            started_at: row.started_at,
            ended_at: row.ended_at,
            participants: row.participants,
        };
        (call, row.node)
    }))
}

/// The channel's call in progress.
pub async fn current(state: &AppState, channel_id: &str) -> ApiResult<Call> {
    let (call, _) = load(&state.db, channel_id)
        .await?
        .ok_or_else(|| ApiError::not_found("call in progress"))?;
    Ok(call)
}

/// `user_id` joins the channel's call, starting it on the least loaded
/// healthy SFU node if there is none: the ticket to the media.
pub async fn join(state: &AppState, user_id: &str, channel_id: &str) -> ApiResult<Ticket> {
    let calls = configured(state)?;
    let key = calls.join_token_key.read().map_err(|e| {
        tracing::error!(error = %e, "cannot read the join-token key");
        ApiError::unavailable("calls are misconfigured on this server")
    })?;
    let existing = load(&state.db, channel_id).await?;
    let node = match &existing {
        Some((_, node)) => node.clone(),
        None => pick_node(&calls.sfu_nodes).await?,
    };
    let mut tx = state.db.begin().await?;
    let started = if existing.is_none() {
        let inserted = db::calls::open(&mut *tx, &new_id(), channel_id, &node, user_id).await?;
        if inserted {
            say(&mut tx, state, channel_id, user_id, "📞 started a call").await?;
        }
        inserted
    } else {
        false
    };
    // Into the call in progress now, whoever started it first.
    db::calls::enter(&mut *tx, channel_id, user_id).await?;
    let (call, node) = load(&mut *tx, channel_id)
        .await?
        .ok_or_else(|| ApiError::unavailable("the call ended meanwhile; try again"))?;
    let change = if started {
        Change::CallStarted(call.clone())
    } else {
        Change::CallUpdated(call.clone())
    };
    events::record(&mut tx, &change).await?;
    db::commit(tx).await?;
    let name = db::users::display_name(&state.db, user_id)
        .await
        .map_err(db::Error::after_commit)?
        .unwrap_or_else(|| user_id.to_string());
    let expires_at =
        Utc::now() + chrono::Duration::seconds(calls.join_token_ttl_seconds.max(1) as i64);
    let token = join_token::sign(
        key.as_bytes(),
        &join_token::Claims {
            call: call.id.clone(),
            user: user_id.to_string(),
            name,
            expires: expires_at.timestamp(),
        },
    );
    Ok(Ticket {
        url: format!("{}/calls/{}/ws", websocket_base(&node), call.id),
        call,
        token,
        expires_at,
    })
}

/// `user_id` is no longer in the channel's call; the last one out ends it
/// (posting its end, as that user). False if they were not in it.
pub async fn depart(state: &AppState, channel_id: &str, user_id: &str) -> ApiResult<bool> {
    let mut tx = state.db.begin().await?;
    if !db::calls::depart(&mut *tx, channel_id, user_id).await? {
        return Ok(false);
    }
    let (mut call, _) = load(&mut *tx, channel_id).await?.expect("still open");
    if call.participants.is_empty() {
        let ended_at = db::calls::end(&mut *tx, &call.id).await?;
        let minutes = ((ended_at - call.started_at).num_seconds() as f64 / 60.0).ceil() as i64;
        say(
            &mut tx,
            state,
            channel_id,
            user_id,
            &format!("📞 call ended after {minutes} min"),
        )
        .await?;
        call.ended_at = Some(ended_at);
        events::record(&mut tx, &Change::CallEnded(call)).await?;
    } else {
        events::record(&mut tx, &Change::CallUpdated(call)).await?;
    }
    db::commit(tx).await?;
    Ok(true)
}

/// How often calls are compared with who their SFU node says is there.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How long a participant has to connect to the SFU after getting a ticket.
const CONNECT_GRACE_SECONDS: i64 = 60;

/// Ends the part in calls of people who went without leaving (a crashed
/// client, a lost network): every [`SWEEP_EVERY`], each call in progress
/// is compared with its node's list; whoever the node has not seen for
/// [`CONNECT_GRACE_SECONDS`] since they joined leaves, and the last one
/// out ends the call. A node that does not answer changes nothing.
pub async fn sweep(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if let Err(why) = sweep_once(&state).await {
            tracing::warn!("call sweep: {why}");
        }
    }
}

/// One pass of [`sweep`]; public for tests.
pub async fn sweep_once(state: &AppState) -> Result<(), String> {
    let Some(calls) = state.config().calls.clone() else {
        return Ok(());
    };
    let key = calls.join_token_key.read().map_err(|e| e.to_string())?;
    let open = sqlx::query!("SELECT id, channel_id, node FROM calls WHERE ended_at IS NULL")
        .fetch_all(&state.db)
        .await
        .map_err(|e| e.to_string())?;
    for row in open {
        let (call, channel, node) = (row.id, row.channel_id, row.node);
        let token = join_token::sign(
            key.as_bytes(),
            &join_token::Claims {
                call: call.clone(),
                user: join_token::SERVER.into(),
                name: "server".into(),
                expires: Utc::now().timestamp() + 60,
            },
        );
        let present = match tokio::time::timeout(
            Duration::from_secs(2),
            node_get(&node, &format!("/calls/{call}/participants"), Some(&token)),
        )
        .await
        {
            Ok(Ok(body)) => match serde_json::from_str::<NodeParticipants>(&body) {
                Ok(list) => list.participants,
                Err(e) => {
                    tracing::warn!(%node, "participants: {e}");
                    continue;
                }
            },
            _ => continue,
        };
        let gone = sqlx::query_scalar!(
            "SELECT user_id FROM call_participants
             WHERE call_id = $1 AND left_at IS NULL
               AND joined_at < now() - make_interval(secs => $2)
               AND NOT (user_id = ANY($3))",
            call,
            CONNECT_GRACE_SECONDS as f64,
            &present
        )
        .fetch_all(&state.db)
        .await
        .map_err(|e| e.to_string())?;
        for user in gone {
            tracing::info!(%call, %user, "left the call without leaving (not on the SFU)");
            depart(state, &channel, &user)
                .await
                .map_err(|e| e.message)?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct NodeParticipants {
    participants: Vec<String>,
}

/// Posts `message` in the channel as `user_id`, through the one write of
/// posts (shared channels carry it to partners).
async fn say(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    channel_id: &str,
    user_id: &str,
    message: &str,
) -> ApiResult<()> {
    posts::create(
        tx,
        &state.config(),
        posts::NewPost {
            id: &new_id(),
            channel_id,
            author_id: user_id,
            reply_to: None,
            message,
            files: posts::Attached::Uploads(&[]),
            by: posts::By::Local,
        },
    )
    .await?;
    Ok(())
}

/// `ws://` or `wss://` for a node's `http://` or `https://` URL.
pub(crate) fn websocket_base(node: &str) -> String {
    let node = node.trim_end_matches('/');
    if let Some(rest) = node.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = node.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        node.to_string()
    }
}

/// What a node says of itself at `/status`.
#[derive(Debug, Deserialize)]
struct NodeStatus {
    draining: bool,
    load: u64,
}

/// The least loaded node that answers and is not draining.
async fn pick_node(nodes: &[String]) -> ApiResult<String> {
    let checks = nodes.iter().map(|node| async move {
        let status = tokio::time::timeout(Duration::from_secs(2), node_status(node)).await;
        match status {
            Ok(Ok(status)) if !status.draining => Some((status.load, node.clone())),
            Ok(Ok(_)) => None,
            Ok(Err(why)) => {
                tracing::warn!(%node, "SFU node unhealthy: {why}");
                None
            }
            Err(_) => {
                tracing::warn!(%node, "SFU node did not answer within 2 s");
                None
            }
        }
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .min()
        .map(|(_, node)| node)
        .ok_or_else(|| ApiError::unavailable("no media server is available for calls; retry later"))
}

async fn node_status(node: &str) -> Result<NodeStatus, String> {
    let body = node_get(node, "/status", None).await?;
    serde_json::from_str(&body).map_err(|e| format!("status: {e}"))
}

/// `GET {node}{path}` over plain HTTP (nodes are reached inside the
/// cluster), with `token` as a Bearer token; the body of a 200, of at most
/// 256 KiB.
async fn node_get(node: &str, path: &str, token: Option<&str>) -> Result<String, String> {
    use http_body_util::{BodyExt as _, Empty, Limited};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    if !node.starts_with("http://") {
        return Err("the server reaches SFU nodes over http:// only".into());
    }
    let uri = format!("{}{path}", node.trim_end_matches('/'));
    let mut request = axum::http::Request::get(&uri);
    if let Some(token) = token {
        request = request.header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Empty::<axum::body::Bytes>::new())
        .map_err(|e| format!("{uri}: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    let status = response.status();
    if status != axum::http::StatusCode::OK {
        return Err(format!("{uri}: {status}"));
    }
    let body = Limited::new(response.into_body(), 256 * 1024)
        .collect()
        .await
        .map_err(|e| format!("{uri}: {e}"))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|e| format!("{uri}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_get_a_websocket_url_for_the_node() {
        assert_eq!(
            websocket_base("http://10.0.0.7:7880/"),
            "ws://10.0.0.7:7880"
        );
        assert_eq!(
            websocket_base("https://sfu-0.example"),
            "wss://sfu-0.example"
        );
    }
}
