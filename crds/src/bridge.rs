//! `Bridge`: channels linked to Matrix rooms or XMPP multi-user chats.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{status_struct, PodSettings, SecretKeyRef};

/// A link to a partner on a legacy platform: a Matrix application service or an
/// XMPP component, relaying messages both ways between channels and rooms.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "Bridge",
    namespaced,
    derive = "PartialEq",
    status = "BridgeStatus",
    shortname = "br",
    category = "entente",
    doc = "A Matrix appservice or XMPP component linking workspace channels to rooms on a partner's server.",
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.workspaceRef"),
    printcolumn(name = "Rooms", type_ = "integer", json_path = ".status.linkedRooms"),
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
#[x_kube(validation = Rule::new("has(self.matrix) != has(self.xmpp)").message("set exactly one of matrix or xmpp"))]
#[x_kube(validation = Rule::new("!has(self.matrix) || self.links.all(l, l.room.matches('^[!#][^:]+:.+$'))").message("Matrix rooms must be room ids (!id:server) or aliases (#alias:server)"))]
#[x_kube(validation = Rule::new("!has(self.xmpp) || self.links.all(l, l.room.matches('^[^@/]+@[^@/]+$'))").message("XMPP rooms must be multi-user chat JIDs such as ops@conference.partner.example"))]
pub struct BridgeSpec {
    #[schemars(length(min = 1, max = 253))]
    pub workspace_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<MatrixBridge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmpp: Option<XmppBridge>,
    /// Which channel is linked to which room.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["channel".into()]))]
    pub links: Vec<BridgeLink>,
    #[serde(default)]
    pub pod: PodSettings,
}

/// A Matrix homeserver the bridge registers with as an application service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatrixBridge {
    /// Client-server API URL of the homeserver.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))").message("matrix.homeserverUrl must be an absolute http(s) URL"))]
    pub homeserver_url: String,
    /// The homeserver's server name (the part after `:` in user ids).
    #[schemars(length(min = 1, max = 255))]
    pub server_name: String,
    /// Localpart of the bridge's own Matrix user.
    #[serde(default = "default_sender")]
    #[schemars(regex(pattern = r"^[a-z0-9._=/-]+$"))]
    pub sender_localpart: String,
    /// Prefix of the Matrix users that stand for workspace users.
    #[serde(default = "default_user_prefix")]
    #[schemars(regex(pattern = r"^[a-z0-9._=/-]+$"))]
    pub user_prefix: String,
    /// Secret with `as_token` and `hs_token`. Absent: the operator generates them into `<bridge>-registration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_secret: Option<String>,
}

fn default_sender() -> String {
    "entente".into()
}
fn default_user_prefix() -> String {
    "entente_".into()
}

/// An XMPP server the bridge connects to as an external component (XEP-0114).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct XmppBridge {
    #[schemars(length(min = 1, max = 255))]
    pub host: String,
    #[serde(default = "default_component_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The component's domain, e.g. `entente.partner.example`.
    #[schemars(length(min = 1, max = 255))]
    pub component_domain: String,
    /// The component's shared secret.
    pub secret: SecretKeyRef,
}

fn default_component_port() -> i32 {
    5347
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BridgeLink {
    /// Local channel name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub channel: String,
    /// Matrix room id or alias, or XMPP multi-user chat JID.
    #[schemars(length(min = 3, max = 255))]
    pub room: String,
}

status_struct! {
    BridgeStatus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub linked_rooms: Option<i32>,
    }
}
