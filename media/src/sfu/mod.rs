//! One SFU node: rooms and forwarding.
//!
//! Each participant has one peer connection with the SFU
//! ([`participant`]). Every track a participant publishes becomes one local
//! track, same codec, nothing transcoded ([`published`]), added to every
//! other participant's connection ([`forwarded`]); its RTP packets are
//! written to all of them as they arrive. Receivers' picture-loss requests
//! go back to the publisher; NACKs are answered from the SFU's send buffer
//! and the SFU asks publishers for what it lost (the default interceptors).
//! Renegotiation is serialised per participant, with the SFU the only
//! offerer. Who is in which call, and the seats held while connections set
//! up, is [`room`], behind the node's one lock; the media stack is
//! [`network`].

mod forwarded;
mod network;
mod participant;
mod published;
mod room;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use tokio::sync::{mpsc, watch};
use webrtc::{
    api::API,
    ice_transport::ice_server::RTCIceServer,
    peer_connection::{
        configuration::RTCConfiguration, peer_connection_state::RTCPeerConnectionState,
        sdp::session_description::RTCSessionDescription,
    },
    rtp_transceiver::rtp_sender::RTCRtpSender,
    track::track_local::TrackLocal,
};

pub use self::participant::Participant;
use self::{network::TcpFallback, published::PublishedTrack, room::Rooms};
use crate::{
    metrics::Metrics,
    signal::{Peer, ServerMessage},
};

/// Why the SFU could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("media: {0}")]
    Media(#[from] webrtc::Error),
    #[error("UDP: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a join was refused: a code for clients and a message for people.
#[derive(Debug)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// An ICE server as a client is to use it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

pub struct Sfu {
    api: API,
    tcp: Option<TcpFallback>,
    advertised: Vec<String>,
    ice_servers: Vec<RTCIceServer>,
    rooms: Mutex<Rooms<Participant, PublishedTrack>>,
    next_id: AtomicU64,
    /// Rooms in progress, for drain to wait on.
    room_count: watch::Sender<usize>,
    pub metrics: Metrics,
}

/// What `/status` reports.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub draining: bool,
    pub rooms: usize,
    pub participants: usize,
    /// Streams being forwarded (each published track times its receivers):
    /// the server sends new calls to the node where this is lowest.
    pub load: usize,
}

impl Sfu {
    fn rooms(&self) -> std::sync::MutexGuard<'_, Rooms<Participant, PublishedTrack>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> Status {
        let rooms = self.rooms();
        let counts = rooms.counts();
        Status {
            draining: rooms.draining(),
            rooms: counts.rooms,
            participants: counts.participants,
            load: counts.load,
        }
    }

    /// The users connected to `call` now.
    pub fn participants(&self, call: &str) -> Vec<String> {
        self.rooms().users(call)
    }

    /// Stops taking new calls; the returned receiver reaches 0 when the
    /// last call in progress ends.
    pub fn drain(&self) -> watch::Receiver<usize> {
        let mut rooms = self.rooms();
        rooms.drain();
        tracing::info!(rooms = rooms.counts().rooms, "draining: no new calls");
        self.room_count.subscribe()
    }

    /// Publishes the rooms' figures after a change.
    fn counted(&self, rooms: &Rooms<Participant, PublishedTrack>) {
        let counts = rooms.counts();
        self.room_count.send_replace(counts.rooms);
        self.metrics.rooms.set(counts.rooms as i64);
        self.metrics.participants.set(counts.participants as i64);
        rooms.recount();
    }

    /// Admits `peer` to `call` with its SDP `offer`: the answer, who is
    /// there, and the participant (to give `leave` and answers to).
    pub async fn join(
        self: &Arc<Sfu>,
        call: &str,
        peer: Peer,
        offer: String,
        out: mpsc::UnboundedSender<ServerMessage>,
    ) -> Result<(Arc<Participant>, ServerMessage), Refusal> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Reserve the seat before the (slow) connection set-up.
        self.rooms().seat(call)?;
        let pc = self
            .api
            .new_peer_connection(RTCConfiguration {
                ice_servers: self.ice_servers.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                self.release(call);
                Refusal::new("media", format!("cannot create the connection: {e}"))
            })?;
        let pc = Arc::new(pc);
        let participant = Arc::new(Participant::new(id, peer.clone(), pc.clone(), out));
        self.watch_tracks(call, &participant);
        self.watch_state(call, &participant);
        let answer = async {
            pc.set_remote_description(RTCSessionDescription::offer(offer)?)
                .await?;
            let answer = pc.create_answer(None).await?;
            let mut gathered = pc.gathering_complete_promise().await;
            pc.set_local_description(answer).await?;
            let _ = gathered.recv().await;
            Ok::<_, webrtc::Error>(pc.local_description().await.map(|d| d.sdp))
        }
        .await;
        let answer = match answer {
            Ok(Some(sdp)) => sdp,
            Ok(None) => {
                let _ = pc.close().await;
                self.release(call);
                return Err(Refusal::new("media", "no local description"));
            }
            Err(e) => {
                let _ = pc.close().await;
                self.release(call);
                return Err(Refusal::new(
                    "bad_offer",
                    format!("the offer is not usable: {e}"),
                ));
            }
        };
        let room::Admitted {
            stale,
            others,
            tracks,
        } = {
            let mut rooms = self.rooms();
            let admitted = rooms.admit(call, participant.clone());
            self.counted(&rooms);
            admitted
        };
        // One connection per user: an older one of the same user goes.
        if !stale.is_empty() {
            tracing::info!(%call, user = %peer.user, "user rejoined");
        }
        for old in stale {
            self.leave_id(call, old);
        }
        for other in &others {
            let _ = other
                .out
                .send(ServerMessage::ParticipantJoined { peer: peer.clone() });
        }
        // Everything already published, sent to the newcomer.
        if !tracks.is_empty() {
            let sfu = self.clone();
            let (call, newcomer) = (call.to_string(), participant.clone());
            tokio::spawn(async move {
                for track in &tracks {
                    sfu.forward_to(&call, &newcomer, track).await;
                }
                newcomer.negotiate().await;
            });
        }
        tracing::info!(%call, user = %peer.user, "joined");
        Ok((
            participant,
            ServerMessage::Joined {
                answer,
                participants: others.iter().map(|p| p.peer.clone()).collect(),
            },
        ))
    }

    /// Gives back the seat a join held, which did not complete.
    fn release(&self, call: &str) {
        let mut rooms = self.rooms();
        rooms.release(call);
        self.counted(&rooms);
    }

    fn watch_state(self: &Arc<Sfu>, call: &str, participant: &Arc<Participant>) {
        let (sfu, call, id) = (Arc::downgrade(self), call.to_string(), participant.id);
        participant
            .pc
            .on_peer_connection_state_change(Box::new(move |state| {
                let (sfu, call) = (sfu.clone(), call.clone());
                Box::pin(async move {
                    if matches!(
                        state,
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                    ) {
                        if let Some(sfu) = sfu.upgrade() {
                            sfu.leave_id(&call, id);
                        }
                    }
                })
            }));
    }

    /// The participant is gone: its tracks end for everyone else.
    pub fn leave(self: &Arc<Sfu>, call: &str, participant: &Participant) {
        self.leave_id(call, participant.id);
    }

    fn leave_id(self: &Arc<Sfu>, call: &str, id: u64) {
        let room::Left {
            gone,
            others,
            ended,
        } = {
            let mut rooms = self.rooms();
            let Some(left) = rooms.leave(call, id) else {
                return;
            };
            self.counted(&rooms);
            left
        };
        let ended: Vec<String> = ended.iter().map(|t| t.local.id().to_string()).collect();
        tracing::info!(%call, user = %gone.peer.user, "left");
        tokio::spawn(async move {
            let _ = gone.pc.close().await;
            for other in others {
                let senders: Vec<Arc<RTCRtpSender>> = {
                    let mut senders = other.senders.lock().unwrap_or_else(|e| e.into_inner());
                    ended.iter().filter_map(|t| senders.remove(t)).collect()
                };
                for sender in &senders {
                    let _ = other.pc.remove_track(sender).await;
                }
                let _ = other.out.send(ServerMessage::ParticipantLeft {
                    peer: gone.peer.clone(),
                    tracks: ended.clone(),
                });
                if !senders.is_empty() {
                    other.negotiate().await;
                }
            }
        });
    }
}
