//! Rooms and forwarding.
//!
//! Each participant has one peer connection with the SFU. Every track a
//! participant publishes becomes one local track (`TrackLocalStaticRTP`,
//! same codec: nothing is transcoded) added to every other participant's
//! connection; its RTP packets are written to all of them as they arrive.
//! Receivers' picture-loss requests go back to the publisher; NACKs are
//! answered from the SFU's send buffer and the SFU asks publishers for what
//! it lost (the default interceptors). Renegotiation is serialised per
//! participant, with the SFU the only offerer.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use entente_crds::config::{SfuConfig, UdpPorts};
use tokio::sync::{mpsc, watch};
use webrtc::{
    api::{
        interceptor_registry::register_default_interceptors, media_engine::MediaEngine,
        setting_engine::SettingEngine, APIBuilder, API,
    },
    ice::{
        udp_mux::{UDPMuxDefault, UDPMuxParams},
        udp_network::{EphemeralUDP, UDPNetwork},
    },
    ice_transport::{ice_candidate_type::RTCIceCandidateType, ice_server::RTCIceServer},
    interceptor::registry::Registry,
    peer_connection::{
        configuration::RTCConfiguration, peer_connection_state::RTCPeerConnectionState,
        sdp::session_description::RTCSessionDescription, RTCPeerConnection,
    },
    rtcp::payload_feedbacks::{
        full_intra_request::FullIntraRequest, picture_loss_indication::PictureLossIndication,
    },
    rtp_transceiver::{
        rtp_codec::{RTCRtpCodecParameters, RTPCodecType},
        rtp_sender::RTCRtpSender,
        rtp_transceiver_direction::RTCRtpTransceiverDirection,
        RTCRtpTransceiverInit,
    },
    track::{
        track_local::{track_local_static_rtp::TrackLocalStaticRTP, TrackLocal, TrackLocalWriter},
        track_remote::TrackRemote,
    },
};

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

/// One forwarded track: the publisher's packets, fanned out.
struct Published {
    owner: u64,
    local: Arc<TrackLocalStaticRTP>,
    /// The publisher's SSRC, for picture-loss requests sent back to it.
    ssrc: u32,
    video: bool,
}

pub struct Participant {
    id: u64,
    peer: Peer,
    pc: Arc<RTCPeerConnection>,
    out: mpsc::UnboundedSender<ServerMessage>,
    /// Senders of the others' tracks on this connection, by track id.
    senders: Mutex<HashMap<String, Arc<RTCRtpSender>>>,
    negotiation: Mutex<Negotiation>,
}

#[derive(Default)]
struct Negotiation {
    /// An offer is out and its answer has not come back.
    offering: bool,
    /// Something changed meanwhile: offer again after the answer.
    again: bool,
}

#[derive(Default)]
struct Room {
    participants: HashMap<u64, Arc<Participant>>,
    tracks: Vec<Published>,
    /// Seats held for joins still setting up their connection.
    joining: usize,
    /// `participants.len()`, kept by [`Sfu::counted`] for the forwarding
    /// loops, which read it per packet without taking the rooms' lock.
    size: Arc<AtomicUsize>,
}

impl Room {
    fn is_empty(&self) -> bool {
        self.participants.is_empty() && self.joining == 0
    }
}

/// The TCP fallback's TURN server, and where clients reach it.
struct TcpFallback {
    _server: webrtc::turn::server::Server,
    port: u16,
    secret: String,
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
    max_participants: usize,
    rooms: Mutex<HashMap<String, Room>>,
    next_id: AtomicU64,
    draining: AtomicBool,
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
    /// The media engine, interceptors and ICE network `config` asks for.
    /// `bind` is the address media is received on.
    /// `secret` signs the TCP fallback's TURN credentials (the join-token key).
    pub async fn new(
        config: &SfuConfig,
        bind: std::net::IpAddr,
        secret: &str,
    ) -> Result<Arc<Sfu>, StartError> {
        let tcp = match config.tcp_port {
            None => None,
            Some(port) => {
                let listener = tokio::net::TcpListener::bind((bind, port)).await?;
                let port = listener.local_addr()?.port();
                let conn = crate::turn_tcp::TcpConn::serve(listener)?;
                // Relayed media goes to this host's own UDP port.
                let relay = if bind.is_unspecified() {
                    std::net::IpAddr::from([127, 0, 0, 1])
                } else {
                    bind
                };
                let server =
                    webrtc::turn::server::Server::new(webrtc::turn::server::config::ServerConfig {
                        conn_configs: vec![webrtc::turn::server::config::ConnConfig {
                            conn,
                            relay_addr_generator: Box::new(
                                webrtc::turn::relay::relay_static::RelayAddressGeneratorStatic {
                                    relay_address: relay,
                                    address: relay.to_string(),
                                    net: Arc::new(webrtc::util::vnet::net::Net::new(None)),
                                },
                            ),
                        }],
                        realm: "entente".into(),
                        auth_handler: Arc::new(webrtc::turn::auth::LongTermAuthHandler::new(
                            secret.to_string(),
                        )),
                        channel_bind_timeout: std::time::Duration::from_secs(0),
                        alloc_close_notify: None,
                    })
                    .await
                    .map_err(|e| StartError::Config(format!("sfu.tcpPort: TURN server: {e}")))?;
                tracing::info!(port, "TCP fallback (TURN over TCP)");
                Some(TcpFallback {
                    _server: server,
                    port,
                    secret: secret.to_string(),
                })
            }
        };
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let mut settings = SettingEngine::default();
        settings.set_include_loopback_candidate(bind.is_loopback());
        settings.set_ip_filter(Box::new(move |ip| bind.is_unspecified() || ip == bind));
        match &config.udp {
            UdpPorts::Mux(port) => {
                let socket = tokio::net::UdpSocket::bind((bind, *port)).await?;
                tracing::info!(address = %socket.local_addr()?, "media on one UDP port");
                settings.set_udp_network(UDPNetwork::Muxed(UDPMuxDefault::new(UDPMuxParams::new(
                    socket,
                ))));
            }
            UdpPorts::Range { min, max } => {
                settings.set_udp_network(UDPNetwork::Ephemeral(
                    EphemeralUDP::new(*min, *max).map_err(|e| {
                        StartError::Config(format!("sfu.udp range {min}-{max}: {e}"))
                    })?,
                ));
            }
        }
        if !config.advertised_addresses.is_empty() {
            settings.set_nat_1to1_ips(
                config.advertised_addresses.clone(),
                RTCIceCandidateType::Host,
            );
        }
        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build();
        let ice_servers = config
            .ice_servers
            .iter()
            .map(|server| RTCIceServer {
                urls: server.urls.clone(),
                ..Default::default()
            })
            .collect();
        Ok(Arc::new(Sfu {
            api,
            tcp,
            advertised: config.advertised_addresses.clone(),
            ice_servers,
            max_participants: config.max_participants_per_room.max(1) as usize,
            rooms: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            room_count: watch::channel(0).0,
            metrics: Metrics::default(),
        }))
    }

    /// The ICE servers a participant uses: the configured STUN servers, and
    /// this node's TURN over TCP (with credentials for `valid_for`) when the
    /// TCP fallback is on. `host` is how the client reached signalling.
    pub fn ice_servers(&self, host: &str, valid_for: std::time::Duration) -> Vec<IceServer> {
        let mut servers: Vec<IceServer> = self
            .ice_servers
            .iter()
            .map(|s| IceServer {
                urls: s.urls.clone(),
                username: None,
                credential: None,
            })
            .collect();
        if let Some(tcp) = &self.tcp {
            let host = self.advertised.first().map(String::as_str).unwrap_or(host);
            if let Ok((username, credential)) =
                webrtc::turn::auth::generate_long_term_credentials(&tcp.secret, valid_for)
            {
                servers.push(IceServer {
                    urls: vec![format!("turn:{host}:{}?transport=tcp", tcp.port)],
                    username: Some(username),
                    credential: Some(credential),
                });
            }
        }
        servers
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> Status {
        let rooms = self.rooms();
        Status {
            draining: self.draining.load(Ordering::SeqCst),
            rooms: rooms.len(),
            participants: rooms.values().map(|r| r.participants.len()).sum(),
            load: rooms
                .values()
                .map(|r| r.tracks.len() * r.participants.len().saturating_sub(1))
                .sum(),
        }
    }

    /// The users connected to `call` now.
    pub fn participants(&self, call: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .rooms()
            .get(call)
            .map(|room| {
                room.participants
                    .values()
                    .map(|p| p.peer.user.clone())
                    .collect()
            })
            .unwrap_or_default();
        users.sort();
        users.dedup();
        users
    }

    /// Stops taking new calls; the returned receiver reaches 0 when the
    /// last call in progress ends.
    pub fn drain(&self) -> watch::Receiver<usize> {
        self.draining.store(true, Ordering::SeqCst);
        tracing::info!(rooms = self.rooms().len(), "draining: no new calls");
        self.room_count.subscribe()
    }

    fn counted(&self, rooms: &HashMap<String, Room>) {
        self.room_count.send_replace(rooms.len());
        self.metrics.rooms.set(rooms.len() as i64);
        self.metrics
            .participants
            .set(rooms.values().map(|r| r.participants.len() as i64).sum());
        for room in rooms.values() {
            room.size.store(room.participants.len(), Ordering::Relaxed);
        }
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
        {
            let mut rooms = self.rooms();
            if !rooms.contains_key(call) && self.draining.load(Ordering::SeqCst) {
                return Err(Refusal::new(
                    "draining",
                    "this media server is draining and starts no new calls",
                ));
            }
            let room = rooms.entry(call.to_string()).or_default();
            if room.participants.len() + room.joining >= self.max_participants {
                let message = format!("the call is full ({} participants)", self.max_participants);
                if room.is_empty() {
                    rooms.remove(call);
                }
                return Err(Refusal::new("full", message));
            }
            room.joining += 1;
            if room.participants.values().any(|p| p.peer.user == peer.user) {
                // One connection per user: the newer replaces the older below.
                tracing::info!(%call, user = %peer.user, "user rejoined");
            }
        }
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
        let participant = Arc::new(Participant {
            id,
            peer: peer.clone(),
            pc: pc.clone(),
            out,
            senders: Mutex::new(HashMap::new()),
            negotiation: Mutex::new(Negotiation::default()),
        });
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
        let (others, tracks) = {
            let mut rooms = self.rooms();
            let room = rooms.entry(call.to_string()).or_default();
            room.joining = room.joining.saturating_sub(1);
            // A stale connection of the same user goes.
            let stale: Vec<u64> = room
                .participants
                .values()
                .filter(|p| p.peer.user == peer.user)
                .map(|p| p.id)
                .collect();
            let others: Vec<Arc<Participant>> = room
                .participants
                .values()
                .filter(|p| !stale.contains(&p.id))
                .cloned()
                .collect();
            room.participants.insert(id, participant.clone());
            let tracks: Vec<(Arc<TrackLocalStaticRTP>, u64, u32, bool)> = room
                .tracks
                .iter()
                .filter(|t| t.owner != id)
                .map(|t| (t.local.clone(), t.owner, t.ssrc, t.video))
                .collect();
            self.counted(&rooms);
            drop(rooms);
            for old in stale {
                self.leave_id(call, old);
            }
            (others, tracks)
        };
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
                for (local, owner, ssrc, video) in tracks {
                    sfu.subscribe(&call, &newcomer, local, owner, ssrc, video)
                        .await;
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
        if let Some(room) = rooms.get_mut(call) {
            room.joining = room.joining.saturating_sub(1);
            if room.is_empty() {
                rooms.remove(call);
            }
        }
        self.counted(&rooms);
    }

    /// Adds `local` (published by `owner`) to `to`'s connection, and relays
    /// `to`'s picture-loss requests for it to the publisher.
    async fn subscribe(
        self: &Arc<Sfu>,
        call: &str,
        to: &Arc<Participant>,
        local: Arc<TrackLocalStaticRTP>,
        owner: u64,
        ssrc: u32,
        video: bool,
    ) {
        // A send-only transceiver of its own: never the client's publishing
        // one, so each forwarded track is one m-line the client can tell apart.
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            send_encodings: Vec::new(),
        };
        let sender = match to
            .pc
            .add_transceiver_from_track(
                local.clone() as Arc<dyn TrackLocal + Send + Sync>,
                Some(init),
            )
            .await
        {
            Ok(transceiver) => transceiver.sender().await,
            Err(e) => {
                tracing::warn!(user = %to.peer.user, "cannot add a track: {e}");
                return;
            }
        };
        tracing::debug!(to = %to.peer.user, track = %local.id(), "subscribed");
        to.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(local.id().to_string(), sender.clone());
        let (sfu, room) = (self.clone(), call.to_string());
        tokio::spawn(async move {
            while let Ok((packets, _)) = sender.read_rtcp().await {
                let wants_keyframe = packets.iter().any(|p| {
                    let any = p.as_any();
                    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
                });
                if wants_keyframe {
                    sfu.request_keyframe(&room, owner, ssrc).await;
                }
            }
        });
        if video {
            // The newcomer needs a keyframe to start decoding.
            self.request_keyframe(call, owner, ssrc).await;
        }
    }

    async fn request_keyframe(&self, call: &str, owner: u64, ssrc: u32) {
        let publisher = self
            .rooms()
            .get(call)
            .and_then(|r| r.participants.get(&owner).cloned());
        if let Some(publisher) = publisher {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            let _ = publisher.pc.write_rtcp(&[Box::new(pli)]).await;
        }
    }

    /// Each track the participant publishes is forwarded to the others.
    fn watch_tracks(self: &Arc<Sfu>, call: &str, participant: &Arc<Participant>) {
        let (sfu, call) = (Arc::downgrade(self), call.to_string());
        let owner = participant.id;
        let user = participant.peer.user.clone();
        participant
            .pc
            .on_track(Box::new(move |remote: Arc<TrackRemote>, receiver, _| {
                let (sfu, call, user) = (sfu.clone(), call.clone(), user.clone());
                // The handler must return: the next track's waits for it.
                if let Some(sfu) = sfu.upgrade() {
                    tokio::spawn(async move {
                        // The codec this track's m-line negotiated. The track's own
                        // guess looks its payload type up across every m-line, and
                        // clients number codecs differently (aiortc's Opus is 96,
                        // which is VP8 in the SFU's offers).
                        let pt = remote.payload_type();
                        let codec = receiver
                            .get_parameters()
                            .await
                            .codecs
                            .into_iter()
                            .find(|c| c.payload_type == pt)
                            .unwrap_or_else(|| remote.codec());
                        sfu.publish(&call, owner, &user, remote, codec).await
                    });
                }
                Box::pin(async {})
            }));
    }

    async fn publish(
        self: &Arc<Sfu>,
        call: &str,
        owner: u64,
        user: &str,
        remote: Arc<TrackRemote>,
        codec: RTCRtpCodecParameters,
    ) {
        let video = remote.kind() == RTPCodecType::Video;
        let kind = if video { "video" } else { "audio" };
        let local = Arc::new(TrackLocalStaticRTP::new(
            codec.capability.clone(),
            format!("{user}-{kind}-{}", remote.ssrc()),
            // Receivers know whose track it is by its stream id.
            user.to_string(),
        ));
        let ssrc = remote.ssrc();
        let (others, room_size) = {
            let mut rooms = self.rooms();
            let Some(room) = rooms.get_mut(call) else {
                return;
            };
            if !room.participants.contains_key(&owner) {
                return;
            }
            room.tracks.push(Published {
                owner,
                local: local.clone(),
                ssrc,
                video,
            });
            let others = room
                .participants
                .values()
                .filter(|p| p.id != owner)
                .cloned()
                .collect::<Vec<_>>();
            (others, room.size.clone())
        };
        tracing::info!(%call, %user, mime = %codec.capability.mime_type, "publishing");
        for other in &others {
            self.subscribe(call, other, local.clone(), owner, ssrc, video)
                .await;
            other.negotiate().await;
        }
        self.forward(room_size, remote, local).await;
    }

    /// Copies the publisher's packets to every subscriber until the track ends.
    /// `room_size` is the room's participant count, the publisher included.
    async fn forward(
        &self,
        room_size: Arc<AtomicUsize>,
        remote: Arc<TrackRemote>,
        local: Arc<TrackLocalStaticRTP>,
    ) {
        let mut last_sequence: Option<u16> = None;
        while let Ok((packet, _)) = remote.read_rtp().await {
            self.metrics.packets_received.inc();
            let sequence = packet.header.sequence_number;
            if let Some(last) = last_sequence {
                let gap = sequence.wrapping_sub(last);
                // Gaps forward (not reordering or a restart) are losses.
                if (2..1000).contains(&gap) {
                    self.metrics.packets_lost.inc_by(u64::from(gap - 1));
                }
            }
            last_sequence = Some(sequence);
            let receivers = room_size.load(Ordering::Relaxed).saturating_sub(1) as u64;
            let bytes = packet.payload.len() as u64;
            if local.write_rtp(&packet).await.is_ok() && receivers > 0 {
                self.metrics.packets_forwarded.inc_by(receivers);
                self.metrics.bytes_forwarded.inc_by(bytes * receivers);
            }
        }
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
        let (gone, others, ended) = {
            let mut rooms = self.rooms();
            let Some(room) = rooms.get_mut(call) else {
                return;
            };
            let Some(gone) = room.participants.remove(&id) else {
                return;
            };
            let ended: Vec<String> = room
                .tracks
                .iter()
                .filter(|t| t.owner == id)
                .map(|t| t.local.id().to_string())
                .collect();
            room.tracks.retain(|t| t.owner != id);
            let others: Vec<Arc<Participant>> = room.participants.values().cloned().collect();
            if room.is_empty() {
                rooms.remove(call);
            }
            self.counted(&rooms);
            (gone, others, ended)
        };
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

impl Participant {
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Offers the connection as it now is, unless an offer is out (then
    /// once more after its answer).
    pub async fn negotiate(&self) {
        {
            let mut state = self.negotiation.lock().unwrap_or_else(|e| e.into_inner());
            if state.offering {
                state.again = true;
                return;
            }
            state.offering = true;
        }
        let offer = async {
            let offer = self.pc.create_offer(None).await?;
            let mut gathered = self.pc.gathering_complete_promise().await;
            self.pc.set_local_description(offer).await?;
            let _ = gathered.recv().await;
            Ok::<_, webrtc::Error>(self.pc.local_description().await.map(|d| d.sdp))
        }
        .await;
        match offer {
            Ok(Some(sdp)) => {
                tracing::debug!(user = %self.peer.user, "offer sent");
                let _ = self.out.send(ServerMessage::Offer { sdp });
            }
            Ok(None) | Err(_) => {
                tracing::warn!(user = %self.peer.user, "cannot make an offer: {offer:?}");
                self.negotiation
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .offering = false;
            }
        }
    }

    /// The client's answer to the SFU's last offer.
    pub async fn answered(&self, sdp: String) -> Result<(), String> {
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| e.to_string())?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| format!("the answer is not usable: {e}"))?;
        let again = {
            let mut state = self.negotiation.lock().unwrap_or_else(|e| e.into_inner());
            state.offering = false;
            std::mem::take(&mut state.again)
        };
        if again {
            Box::pin(self.negotiate()).await;
        }
        Ok(())
    }
}
