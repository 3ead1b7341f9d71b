//! `GuestPolicy`: who may enter a workspace as a guest, where, and for how long.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::status_struct;

/// Least-privilege access for people outside the organisation: contractors,
/// liaison officers, partners without a workspace of their own.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "GuestPolicy",
    namespaced,
    derive = "PartialEq",
    status = "GuestPolicyStatus",
    shortname = "gp",
    category = "entente",
    doc = "Who may join a workspace as a guest, which channels they see, and when their access ends.",
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.workspaceRef"),
    printcolumn(name = "Active", type_ = "integer", json_path = ".status.activeGuests"),
    printcolumn(
        name = "Expired",
        type_ = "integer",
        json_path = ".status.expiredGuests"
    ),
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
#[x_kube(validation = Rule::new("!has(self.expiresAt) || !has(self.accountLifetime)").message("set either expiresAt (one date for every guest) or accountLifetime (counted from each guest's first login), not both"))]
pub struct GuestPolicySpec {
    #[schemars(length(min = 1, max = 253))]
    pub workspace_ref: String,
    /// Who may be invited.
    pub invitees: Invitees,
    /// Channels guests under this policy are added to and limited to.
    #[schemars(length(min = 1, max = 256))]
    pub channels: Vec<String>,
    /// How long a guest account lasts after its first login, as a Go duration. Default 720h (30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+h)?([0-9]+m)?$') && self != '' && duration(self) >= duration('1h')").message("accountLifetime must be a duration of at least 1h, such as 720h"))]
    #[schemars(length(max = 32))]
    pub account_lifetime: Option<String>,
    /// A fixed end of access for every guest of this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// How long an invitation can be redeemed (once), as a Go duration.
    #[serde(default = "default_invitation_lifetime")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+h)?([0-9]+m)?$') && self != ''").message("invitationLifetime must be a duration such as 168h"))]
    #[schemars(length(max = 32))]
    pub invitation_lifetime: String,
    #[serde(default)]
    pub permissions: GuestPermissions,
    /// Attributes every guest of this policy carries (e.g. organisation, nation), read by access policies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

fn default_invitation_lifetime() -> String {
    "168h".into()
}

/// Named people, whole email domains or organisations that may be invited.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.emails) + size(self.domains) + size(self.organisations) > 0").message("invitees needs at least one email, domain or organisation"))]
pub struct Invitees {
    #[serde(default)]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.all(e, e.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$'))").message("invitees.emails must be email addresses such as liaison@partner.example"))]
    pub emails: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = 256))]
    #[x_kube(validation = Rule::new("self.all(d, d.matches('^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'))").message("invitees.domains must be lower-case DNS domains such as partner.example"))]
    pub domains: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub organisations: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuestPermissions {
    /// Guests may upload files.
    #[serde(default)]
    pub upload_files: bool,
    /// Guests may send direct messages to people they share a channel with.
    #[serde(default)]
    pub direct_messages: bool,
}

status_struct! {
    GuestPolicyStatus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub active_guests: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub expired_guests: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pending_invitations: Option<i64>,
    }
}
