//! The node's media stack: the WebRTC engine and interceptors, the ICE
//! network (one multiplexed UDP port or a range, advertised addresses), and
//! the TCP fallback (TURN over TCP relaying to the node's own UDP port).

use std::sync::{atomic::AtomicU64, Arc, Mutex};

use entente_crds::config::{SfuConfig, UdpPorts};
use tokio::sync::watch;
use webrtc::{
    api::{
        interceptor_registry::register_default_interceptors, media_engine::MediaEngine,
        setting_engine::SettingEngine, APIBuilder,
    },
    ice::{
        udp_mux::{UDPMuxDefault, UDPMuxParams},
        udp_network::{EphemeralUDP, UDPNetwork},
    },
    ice_transport::{ice_candidate_type::RTCIceCandidateType, ice_server::RTCIceServer},
    interceptor::registry::Registry,
};

use super::{room::Rooms, IceServer, Sfu, StartError};
use crate::metrics::Metrics;

/// The TCP fallback's TURN server, and where clients reach it.
pub(super) struct TcpFallback {
    _server: webrtc::turn::server::Server,
    port: u16,
    secret: String,
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
            rooms: Mutex::new(Rooms::new(config.max_participants_per_room as usize)),
            next_id: AtomicU64::new(1),
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
}
