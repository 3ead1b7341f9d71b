//! `AccessPolicy`: attribute-based access to channels.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::status_struct;

/// A CEL expression over user attributes that gates channels.
///
/// The expression sees `user` (its attributes: `user.nation`, `user.clearance`, …,
/// with ranked attributes compared by rank) and `channel` (name and labels).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "AccessPolicy",
    namespaced,
    derive = "PartialEq",
    status = "AccessPolicyStatus",
    shortname = "ap",
    category = "entente",
    doc = "Attribute-based access control: a CEL expression over user attributes gating channels.",
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.workspaceRef"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Admitted", type_ = "integer", json_path = ".status.admitted"),
    printcolumn(name = "Denied", type_ = "integer", json_path = ".status.denied"),
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
#[x_kube(validation = Rule::new("(size(self.channels) > 0) != has(self.channelSelector)").message("set exactly one of channels (names) or channelSelector (labels)"))]
pub struct AccessPolicySpec {
    #[schemars(length(min = 1, max = 253))]
    pub workspace_ref: String,
    /// What the policy is for, shown in audit entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// CEL over `user` and `channel`, true when the user may access the channel,
    /// e.g. `user.clearance >= 'SECRET' && user.nation in ['FR', 'DE']`.
    #[schemars(length(min = 1, max = 4096))]
    pub expression: String,
    /// Channels the policy gates, by name.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub channels: Vec<String>,
    /// Channels the policy gates, by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_selector: Option<LabelSelector>,
    #[serde(default)]
    pub mode: PolicyMode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PolicyMode {
    /// Users who do not match cannot join or read; members who stop matching are removed.
    #[default]
    Enforce,
    /// Access is allowed; every would-be denial is recorded.
    Audit,
}

status_struct! {
    AccessPolicyStatus {
        /// Members of gated channels that match the policy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub admitted: Option<i64>,
        /// Users denied (Enforce) or who would be denied (Audit).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub denied: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_audit: Option<Time>,
    }
}
