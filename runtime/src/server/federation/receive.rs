//! The receiving side of a push session: answers where the partner should
//! resume, applies each batch in one transaction (events and the new
//! high-water mark together, so a crash re-applies nothing and loses
//! nothing), then acknowledges it.

use std::pin::Pin;

use futures_util::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::{
    apply::{apply_all, Outcome},
    proto::{
        federation_server::Federation, push_frame, push_reply, Ack, PushFrame, PushReply, Resume,
    },
    tls::Peer,
};
use crate::server::{db, state::AppState};

/// Most events one batch may carry.
pub const MAX_BATCH: usize = 1000;

pub struct Receiver {
    state: AppState,
}

impl Receiver {
    pub fn new(state: AppState) -> Receiver {
        Receiver { state }
    }
}

fn database(error: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("database: {error}"))
}

/// The highest sequence number applied from `partner`.
pub async fn applied(pool: &sqlx::PgPool, partner: &str) -> Result<u64, db::Error> {
    Ok(db::federation::contact(pool, partner).await? as u64)
}

/// Applies the events of `batch` past `applied`; returns the new high-water
/// mark and how many were refused.
pub async fn apply_batch(
    state: &AppState,
    partner_id: &str,
    applied: u64,
    batch: Vec<super::proto::Envelope>,
) -> Result<(u64, u32), Status> {
    let config = state.config();
    let partner = super::partner(&config, partner_id)
        .ok_or_else(|| Status::permission_denied("this workspace no longer trusts the partner"))?;
    if batch.len() > MAX_BATCH {
        return Err(Status::invalid_argument(format!(
            "a batch carries at most {MAX_BATCH} events"
        )));
    }
    let mut high = applied;
    let mut events = Vec::with_capacity(batch.len());
    for envelope in batch {
        if envelope.seq <= high {
            continue;
        }
        high = envelope.seq;
        events.extend(envelope.event);
    }
    let mut tx = state.db.begin().await.map_err(database)?;
    let outcomes = apply_all(&mut tx, &config, partner, &events)
        .await
        .map_err(database)?;
    let mut rejected = 0u32;
    for (event, outcome) in events.iter().zip(outcomes) {
        if let Outcome::Rejected(reason) = outcome {
            rejected += 1;
            state.metrics.federation_rejected_events.inc();
            tracing::warn!(partner = %partner_id, event = %event.id, "refused an event: {reason}");
        }
    }
    db::federation::set_applied(&mut *tx, partner_id, high as i64)
        .await
        .map_err(database)?;
    tx.commit().await.map_err(database)?;
    crate::server::events::written();
    Ok((high, rejected))
}

type Replies = Pin<Box<dyn Stream<Item = Result<PushReply, Status>> + Send>>;

#[tonic::async_trait]
impl Federation for Receiver {
    type PushStream = Replies;
    type FetchStream = super::files::Chunks;

    async fn fetch(
        &self,
        request: Request<super::proto::FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        // Set by the TLS layer from the client certificate, never from the peer's words.
        let peer = request
            .extensions()
            .get::<Peer>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no partner certificate"))?;
        super::files::serve(&self.state, &peer.workspace_id, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn push(
        &self,
        request: Request<Streaming<PushFrame>>,
    ) -> Result<Response<Replies>, Status> {
        // Set by the TLS layer from the client certificate, never from the peer's words.
        let peer = request
            .extensions()
            .get::<Peer>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no partner certificate"))?;
        let config = self.state.config();
        let partner = super::partner(&config, &peer.workspace_id)
            .ok_or_else(|| Status::permission_denied("not a partner of this workspace"))?;
        if partner.suspended {
            return Err(Status::unavailable(
                "federation with this partner is suspended here",
            ));
        }
        let mut applied = applied(&self.state.db, &peer.workspace_id)
            .await
            .map_err(database)?;
        let mut frames = request.into_inner();
        let (replies, stream) = tokio::sync::mpsc::channel::<Result<PushReply, Status>>(16);
        let reply = |body| PushReply { body: Some(body) };
        replies
            .send(Ok(reply(push_reply::Body::Resume(Resume { applied }))))
            .await
            .map_err(|_| Status::cancelled("gone"))?;
        let state = self.state.clone();
        tokio::spawn(async move {
            loop {
                let frame = match frames.message().await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(partner = %peer.workspace_id, "push session ended: {status}");
                        return;
                    }
                };
                match frame.body {
                    Some(push_frame::Body::Batch(batch)) => {
                        match apply_batch(&state, &peer.workspace_id, applied, batch.events).await {
                            Ok((high, rejected)) => {
                                applied = high;
                                let ack = reply(push_reply::Body::Ack(Ack { applied, rejected }));
                                if replies.send(Ok(ack)).await.is_err() {
                                    return;
                                }
                            }
                            Err(status) => {
                                let _ = replies.send(Err(status)).await;
                                return;
                            }
                        }
                    }
                    Some(push_frame::Body::Keepalive(_)) | None => {
                        let _ = db::federation::touch(&state.db, &peer.workspace_id).await;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(stream),
        )))
    }
}
