//! `LegalHold`: data that must not be deleted while a matter is open.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::status_struct;

/// Users' and channels' messages and files exempt from retention and deletion,
/// with the reason and the period. Files get an S3 object legal hold too.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "LegalHold",
    namespaced,
    derive = "PartialEq",
    status = "LegalHoldStatus",
    shortname = "lh",
    category = "entente",
    doc = "Users and channels whose messages and files must not be deleted, with a reason and a period.",
    printcolumn(name = "Workspace", type_ = "string", json_path = ".spec.workspaceRef"),
    printcolumn(name = "Ends", type_ = "date", json_path = ".spec.endsAt"),
    printcolumn(name = "Held", type_ = "integer", json_path = ".status.heldPosts"),
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
#[x_kube(validation = Rule::new("size(self.users) + size(self.channels) > 0").message("a legal hold needs at least one user or channel"))]
#[x_kube(validation = Rule::new("!has(self.startsAt) || !has(self.endsAt) || self.endsAt > self.startsAt").message("endsAt must be after startsAt"))]
#[x_kube(validation = Rule::new("self.workspaceRef == oldSelf.workspaceRef").message("workspaceRef cannot change; create a new LegalHold for another workspace"))]
pub struct LegalHoldSpec {
    #[schemars(length(min = 1, max = 253))]
    pub workspace_ref: String,
    /// Why the data is held, recorded in the audit log.
    #[schemars(length(min = 1, max = 2048))]
    pub reason: String,
    /// Case or matter reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub case_reference: Option<String>,
    /// Usernames whose messages and files are held (in every channel).
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub users: Vec<String>,
    /// Channels whose messages and files are held.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub channels: Vec<String>,
    /// Hold only data created from this time. Absent: everything that exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Time>,
    /// The hold ends at this time. Absent: until the LegalHold is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Time>,
    /// Also place an S3 object legal hold on the files (needs `objectStorage.objectLock`).
    #[serde(default = "crate::workspace::default_true")]
    pub include_files: bool,
}

status_struct! {
    LegalHoldStatus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub held_posts: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub held_files: Option<i64>,
    }
}
