//! `MediaConfig`: what an SFU or offloader process needs.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, ObjectStorageConfig, SecretSource};

/// The schema version this build reads and writes.
pub const MEDIA_CONFIG_VERSION: u32 = 1;

/// The rendered configuration of one media process (`entente-sfu` or
/// `entente-offloader`); each reads its own section and ignores the other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediaConfig {
    /// Always [`MEDIA_CONFIG_VERSION`].
    pub version: u32,
    /// The CallsCluster this process belongs to.
    pub cluster: String,
    /// Key join tokens are verified with (the server signs them with the same key).
    pub join_token_key: SecretSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfu: Option<SfuConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloader: Option<OffloaderConfig>,
}

impl MediaConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        super::load(path, "MediaConfig", MEDIA_CONFIG_VERSION)
    }

    /// The file the operator mounts and `entente up` writes.
    pub fn to_yaml(&self) -> String {
        super::to_yaml(self)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        super::parse(text, origin, "MediaConfig", MEDIA_CONFIG_VERSION)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SfuConfig {
    /// WebSocket signalling, `/status` and `/metrics`.
    pub listen: SocketAddr,
    pub udp: UdpPorts,
    /// TCP port of the TCP fallback (TURN over TCP, relaying to this node's
    /// UDP port), for clients whose UDP is blocked; absent: UDP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_port: Option<u16>,
    /// Addresses advertised in ICE candidates instead of the local ones (NAT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advertised_addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServerConfig>,
    pub max_participants_per_room: u32,
}

/// The UDP ports media arrives on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum UdpPorts {
    /// One port shared by every participant (ICE demultiplexes by ufrag).
    Mux(u16),
    Range {
        min: u16,
        max: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IceServerConfig {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretSource>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OffloaderConfig {
    /// `/status` and `/metrics`.
    pub listen: SocketAddr,
    /// Where recordings and transcripts are uploaded.
    pub object_storage: ObjectStorageConfig,
    pub recording: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<TranscriptionConfig>,
    pub live_captions: bool,
    pub max_concurrent_jobs: u32,
    /// Scratch space for recordings before upload.
    pub work_dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TranscriptionConfig {
    pub base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretSource>,
    pub model: String,
}
