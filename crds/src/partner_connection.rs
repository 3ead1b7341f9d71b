//! `PartnerConnection`: trust with one partner workspace and the channels shared with it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{status_struct, SecretKeyRef};

/// Trust between a local Workspace and one partner workspace, and the channels shared with it.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "PartnerConnection",
    namespaced,
    derive = "PartialEq",
    status = "PartnerConnectionStatus",
    shortname = "pc",
    category = "entente",
    doc = "Trust with one partner workspace over mutual TLS, and the channels shared with it.",
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.workspaceRef"),
    printcolumn(
        name = "Partner",
        type_ = "string",
        json_path = ".spec.partner.workspaceId"
    ),
    printcolumn(
        name = "Connected",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Connected\")].status"
    ),
    printcolumn(name = "Queue", type_ = "integer", json_path = ".status.queuedEvents"),
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
pub struct PartnerConnectionSpec {
    /// The local Workspace (in this namespace) that shares with the partner.
    #[schemars(length(min = 1, max = 253))]
    pub workspace_ref: String,
    pub partner: PartnerSpec,
    /// Channels shared with the partner. A partner sees and writes nothing else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub channels: Vec<SharedChannel>,
    #[serde(default)]
    pub sync: SyncSpec,
    /// Let this partner pass on what it receives to its own partners. Off: no
    /// transitive re-sharing.
    #[serde(default)]
    pub allow_relay: bool,
    /// Stop exchanging events (the outbox keeps filling) without deleting the trust.
    #[serde(default)]
    pub suspended: bool,
}

/// Who the partner is and how to reach it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerSpec {
    /// The partner workspace's id, the origin of every event it sends.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub workspace_id: String,
    /// The partner organisation, shown beside its users.
    #[schemars(length(min = 1, max = 128))]
    pub organisation: String,
    /// The partner's federation endpoint, e.g. `https://fed.partner.example:8443`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && self.startsWith('https://')").message("partner.endpoint must be an https URL: federation only runs over mutual TLS"))]
    pub endpoint: String,
    /// The CA bundle the partner's certificate must chain to.
    pub ca_bundle: SecretKeyRef,
    /// The DNS name the partner's certificate must carry.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"))]
    pub identity: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ShareMode {
    /// The partner reads and, unless permissions say otherwise, posts, reacts and uploads.
    #[default]
    ReadWrite,
    /// The partner only reads.
    ReadOnly,
}

/// One local channel shared with the partner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'ReadOnly' || ((!has(self.permissions.post) || !self.permissions.post) && (!has(self.permissions.uploadFiles) || !self.permissions.uploadFiles))").message("a ReadOnly share cannot allow the partner to post or upload files: set mode: ReadWrite or remove permissions.post/uploadFiles"))]
pub struct SharedChannel {
    /// Local channel name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub name: String,
    /// Name the channel has on the partner side, if different.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub remote_name: Option<String>,
    #[serde(default)]
    pub mode: ShareMode,
    /// Narrows what a `ReadWrite` share allows; absent fields follow the mode.
    #[serde(default)]
    pub permissions: SharePermissions,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharePermissions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub react: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_files: Option<bool>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum QueueFullPolicy {
    /// Keep every event beyond the limit and report `Degraded`. Nothing is lost.
    #[default]
    KeepAndDegrade,
    /// Refuse new local posts in channels shared with this partner until the queue drains.
    PauseSharedChannels,
}

/// How events move over a link that may be slow, cut or intermittent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncSpec {
    /// Queue size (events) beyond which `whenQueueFull` applies.
    #[serde(default = "default_max_queued_events")]
    #[schemars(range(min = 1))]
    pub max_queued_events: i64,
    /// Queue size (bytes, as a quantity) beyond which `whenQueueFull` applies.
    #[serde(default = "default_max_queued_bytes")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$"))]
    pub max_queued_bytes: String,
    #[serde(default)]
    pub when_queue_full: QueueFullPolicy,
    /// Cap on bytes per second sent to the partner, as a quantity (e.g. `64Ki`). Absent: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|k|M|G)?$"))]
    pub bandwidth_limit: Option<String>,
    /// Largest file synchronised, as a quantity.
    #[serde(default = "default_max_file_size")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|k|M|G)?$"))]
    pub max_file_size: String,
    /// Seconds between keepalives on an idle link.
    #[serde(default = "default_keepalive")]
    #[schemars(range(min = 5, max = 3600))]
    pub keepalive_seconds: i32,
    /// Longest wait between reconnect attempts, in seconds.
    #[serde(default = "default_max_backoff")]
    #[schemars(range(min = 1, max = 86400))]
    pub max_backoff_seconds: i32,
    #[serde(default = "crate::workspace::default_true")]
    pub compression: bool,
}

impl Default for SyncSpec {
    fn default() -> Self {
        Self {
            max_queued_events: default_max_queued_events(),
            max_queued_bytes: default_max_queued_bytes(),
            when_queue_full: QueueFullPolicy::default(),
            bandwidth_limit: None,
            max_file_size: default_max_file_size(),
            keepalive_seconds: default_keepalive(),
            max_backoff_seconds: default_max_backoff(),
            compression: true,
        }
    }
}

fn default_max_queued_events() -> i64 {
    1_000_000
}
fn default_max_queued_bytes() -> String {
    "1Gi".into()
}
fn default_max_file_size() -> String {
    "100Mi".into()
}
fn default_keepalive() -> i32 {
    30
}
fn default_max_backoff() -> i32 {
    300
}

status_struct! {
    /// The link as the server last reported it.
    PartnerConnectionStatus {
        /// Last time anything was received from the partner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_contact: Option<Time>,
        /// Events waiting for the partner's acknowledgement.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub queued_events: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub queued_bytes: Option<i64>,
        /// Age in seconds of the oldest unacknowledged event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub lag_seconds: Option<i64>,
        /// Events from the partner refused (unshared channel, forged origin, over limits).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rejected_events: Option<i64>,
    }
}
