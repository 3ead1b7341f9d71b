//! `CallsCluster`: the SFU fleet and the offloader that records and transcribes calls.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{status_struct, PodSettings, SecretKeyRef};

/// Self-hosted audio and screen share: SFU nodes that forward media inside the
/// sovereign network, and an optional offloader for recording and captions.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "CallsCluster",
    namespaced,
    derive = "PartialEq",
    status = "CallsClusterStatus",
    shortname = "cc",
    category = "entente",
    doc = "SFU nodes for self-hosted calls and screen share, and the offloader for recording, transcription and live captions.",
    printcolumn(name = "Nodes", type_ = "integer", json_path = ".status.readyNodes"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.sfu.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CallsClusterSpec {
    #[serde(default)]
    pub sfu: SfuSpec,
    /// Recording, transcription and live captions. Absent: none of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloader: Option<OffloaderSpec>,
    /// Lifetime of the join tokens the server issues, as a Go duration.
    #[serde(default = "default_token_ttl")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+m)?([0-9]+s)?$') && self != '' && duration(self) <= duration('10m')").message("joinTokenTtl must be a duration of at most 10m, such as 60s"))]
    #[schemars(length(max = 16))]
    pub join_token_ttl: String,
}

fn default_token_ttl() -> String {
    "60s".into()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SfuMode {
    /// A Deployment behind a UDP Service (LoadBalancer or NodePort).
    #[default]
    Deployment,
    /// One pod per selected node on the host network: no NAT between clients and media.
    HostNetwork,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MediaServiceType {
    #[default]
    LoadBalancer,
    NodePort,
    ClusterIP,
}

/// The selective forwarding units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'HostNetwork' || !has(self.replicas)").message("sfu.replicas does not apply in HostNetwork mode (one pod per selected node); remove it or use mode: Deployment"))]
#[x_kube(validation = Rule::new("!(has(self.udpPort) && has(self.udpPortRange))").message("set at most one of sfu.udpPort (one multiplexed port) or sfu.udpPortRange"))]
pub struct SfuSpec {
    #[serde(default)]
    pub mode: SfuMode,
    /// SFU pods in Deployment mode. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: Option<i32>,
    /// One UDP port carrying every call's media. Default 8443 unless `udpPortRange` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub udp_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_port_range: Option<PortRange>,
    /// Accept media over TCP from clients whose UDP is blocked.
    #[serde(default = "crate::workspace::default_true")]
    pub tcp_fallback: bool,
    #[serde(default = "default_media_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub tcp_port: i32,
    /// Addresses clients reach the SFU at, when they differ from the pod's (NAT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub advertised_addresses: Vec<String>,
    /// STUN/TURN servers handed to clients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub ice_servers: Vec<IceServer>,
    #[serde(default = "default_max_participants")]
    #[schemars(range(min = 2, max = 1000))]
    pub max_participants_per_room: i32,
    #[serde(default)]
    pub service_type: MediaServiceType,
    #[serde(default)]
    pub pod: PodSettings,
}

impl Default for SfuSpec {
    fn default() -> Self {
        Self {
            mode: SfuMode::Deployment,
            replicas: None,
            udp_port: None,
            udp_port_range: None,
            tcp_fallback: true,
            tcp_port: default_media_port(),
            advertised_addresses: Vec::new(),
            ice_servers: Vec::new(),
            max_participants_per_room: default_max_participants(),
            service_type: MediaServiceType::default(),
            pod: PodSettings::default(),
        }
    }
}

/// The port SFU media uses (UDP and TCP) unless told otherwise.
pub const DEFAULT_MEDIA_PORT: i32 = 8443;

fn default_media_port() -> i32 {
    DEFAULT_MEDIA_PORT
}

fn default_max_participants() -> i32 {
    100
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.min <= self.max").message("udpPortRange.min must not exceed udpPortRange.max"))]
pub struct PortRange {
    #[schemars(range(min = 1024, max = 65535))]
    pub min: i32,
    #[schemars(range(min = 1024, max = 65535))]
    pub max: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.urls.all(u, u.startsWith('stun:') || u.startsWith('turn:') || u.startsWith('turns:'))").message("iceServers urls must start with stun:, turn: or turns:"))]
#[x_kube(validation = Rule::new("!self.urls.exists(u, u.startsWith('turn')) || (has(self.username) && has(self.credential))").message("a TURN server needs username and credential"))]
pub struct IceServer {
    #[schemars(length(min = 1, max = 8))]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretKeyRef>,
}

/// The job service that records, transcribes and captions calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.transcription || self.liveCaptions) || has(self.languageModelRef)").message("offloader.transcription and offloader.liveCaptions need offloader.languageModelRef (a LanguageModel that serves /v1/audio/transcriptions)"))]
pub struct OffloaderSpec {
    #[serde(default = "default_offloader_replicas")]
    #[schemars(range(min = 1, max = 50))]
    pub replicas: i32,
    #[serde(default = "crate::workspace::default_true")]
    pub recording: bool,
    #[serde(default)]
    pub transcription: bool,
    #[serde(default)]
    pub live_captions: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_model_ref: Option<String>,
    /// Jobs one offloader pod runs at once.
    #[serde(default = "default_jobs")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent_jobs: i32,
    #[serde(default)]
    pub pod: PodSettings,
}

fn default_offloader_replicas() -> i32 {
    1
}
fn default_jobs() -> i32 {
    2
}

status_struct! {
    CallsClusterStatus {
        /// SFU nodes ready to take calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ready_nodes: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub nodes: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ready_offloaders: Option<i32>,
        /// Secret holding the join-token signing key the server and SFU share.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub token_secret: Option<String>,
    }
}
