//! Calls rendered into a Workspace's RuntimeConfig: the CallsCluster its
//! `spec.features.calls` names, its SFU nodes' signalling URLs, and the
//! join-token key as a file beside the config.

use kube::ResourceExt;

use crate::{
    config::{
        CallsConfig, IceServerConfig, MediaConfig, RuntimeConfig, SecretSource, SfuConfig,
        UdpPorts, MEDIA_CONFIG_VERSION,
    },
    CallsCluster, Workspace,
};

/// The MediaConfig of one SFU node of `cc`, signalling on `listen`, reading
/// the join-token key from `key_file`. Its UDP and TCP ports are the spec's,
/// moved up by `port_offset`: a pod of its own has 0, and `entente up`,
/// which runs every node on one machine, gives node `i` the offset `i`.
pub fn media_config(
    cc: &CallsCluster,
    key_file: std::path::PathBuf,
    listen: std::net::SocketAddr,
    port_offset: u16,
) -> MediaConfig {
    let sfu = &cc.spec.sfu;
    let udp = match &sfu.udp_port_range {
        Some(range) => UdpPorts::Range {
            min: range.min as u16,
            max: range.max as u16,
        },
        None => UdpPorts::Mux(
            sfu.udp_port
                .unwrap_or(crate::calls_cluster::DEFAULT_MEDIA_PORT) as u16
                + port_offset,
        ),
    };
    MediaConfig {
        version: MEDIA_CONFIG_VERSION,
        cluster: cc.name_any(),
        join_token_key: SecretSource::File(key_file),
        sfu: Some(SfuConfig {
            listen,
            udp,
            // The TCP fallback: TURN over TCP on the node, relaying to its UDP port.
            tcp_port: sfu
                .tcp_fallback
                .then_some(sfu.tcp_port as u16 + port_offset),
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

/// The key's file name, beside `runtime.yaml` in a workspace's runtime Secret.
pub const KEY_FILE: &str = "calls-join-token.key";

/// Renders calls into a Workspace's config: the CallsCluster its
/// `spec.features.calls` names, once its key exists. Returns the file to
/// put beside the config (the key).
pub fn attach(
    config: &mut RuntimeConfig,
    workspace: &Workspace,
    cc: Option<(&CallsCluster, &[String])>,
    key: Option<&[u8]>,
    config_dir: &std::path::Path,
) -> Vec<(String, Vec<u8>)> {
    let (Some(feature), Some((cc, nodes)), Some(key)) = (&workspace.spec.features.calls, cc, key)
    else {
        return Vec::new();
    };
    config.calls = Some(CallsConfig {
        sfu_nodes: nodes.to_vec(),
        join_token_key: SecretSource::File(config_dir.join(KEY_FILE)),
        join_token_ttl_seconds: seconds(&cc.spec.join_token_ttl),
        recording: feature.recording,
    });
    vec![(KEY_FILE.to_string(), key.to_vec())]
}

/// `60s`, `1m30s`, `10m` in seconds (the CRD allows only these forms).
fn seconds(duration: &str) -> u32 {
    let mut total = 0u32;
    let mut number = 0u32;
    for c in duration.chars() {
        match c {
            '0'..='9' => number = number * 10 + c.to_digit(10).unwrap_or(0),
            'm' => (total, number) = (total + number * 60, 0),
            's' => (total, number) = (total + number, 0),
            _ => {}
        }
    }
    total.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_in_the_forms_the_crd_allows() {
        assert_eq!(seconds("60s"), 60);
        assert_eq!(seconds("1m30s"), 90);
        assert_eq!(seconds("10m"), 600);
    }
}
