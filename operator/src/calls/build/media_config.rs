//! The SFUs' MediaConfig, from the CallsCluster's spec.

use entente_crds::{
    config::{
        IceServerConfig, MediaConfig, SecretSource, SfuConfig, UdpPorts, MEDIA_CONFIG_VERSION,
    },
    CallsCluster,
};
use kube::ResourceExt;

use crate::calls::{CONFIG_MOUNT, KEY, SIGNALLING_PORT};

/// The SFUs' MediaConfig.
pub fn build(cc: &CallsCluster) -> MediaConfig {
    let sfu = &cc.spec.sfu;
    let udp = match &sfu.udp_port_range {
        Some(range) => UdpPorts::Range {
            min: range.min as u16,
            max: range.max as u16,
        },
        None => UdpPorts::Mux(
            sfu.udp_port
                .unwrap_or(entente_crds::calls_cluster::DEFAULT_MEDIA_PORT) as u16,
        ),
    };
    MediaConfig {
        version: MEDIA_CONFIG_VERSION,
        cluster: cc.name_any(),
        join_token_key: SecretSource::File(format!("{CONFIG_MOUNT}/{KEY}").into()),
        sfu: Some(SfuConfig {
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], SIGNALLING_PORT)),
            udp,
            // The TCP fallback: TURN over TCP on the node, relaying to its UDP port.
            tcp_port: sfu.tcp_fallback.then_some(sfu.tcp_port as u16),
            advertised_addresses: sfu.advertised_addresses.clone(),
            // STUN only: TURN credentials would need their Secrets mounted (not built yet).
            ice_servers: sfu
                .ice_servers
                .iter()
                .filter(|s| s.username.is_none())
                .map(|s| IceServerConfig {
                    urls: s.urls.clone(),
                    username: None,
                    credential: None,
                })
                .collect(),
            max_participants_per_room: sfu.max_participants_per_room.max(2) as u32,
        }),
        offloader: None,
    }
}
