//! Building blocks shared by several kinds: secret references, pod settings,
//! and the conventions every spec follows.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest Kubernetes object name (a DNS subdomain).
pub const MAX_NAME_LEN: u32 = 253;

/// A key inside a Secret in the same namespace as the object that refers to it.
///
/// Credentials are never written inline in a spec: the operator only ever passes
/// references on, and the process that needs the value reads it from a mounted file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

impl SecretKeyRef {
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            key: key.into(),
        }
    }
}

/// How a workload's container image is pulled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

/// What happens to data the operator provisioned (a database, a bucket) when the
/// object that asked for it is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the data; an admin removes it by hand. The safe default.
    #[default]
    Retain,
    /// Delete the data with the object, unless it is non-empty or locked.
    Delete,
}

/// Image, scheduling and metadata settings of the pods of one workload.
///
/// Every Entente workload (server, SFU, offloader, model server, bridge) accepts the
/// same settings, so an admin learns them once.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.image) || !self.image.contains(' ')").message("image must be an image reference without spaces, e.g. registry.example/entente/entente-server:0.1.0"))]
pub struct PodSettings {
    /// Container image. Defaults to the image matching the operator's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    #[serde(default)]
    pub image_pull_policy: PullPolicy,
    /// Secrets used to pull the image from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// CPU and memory requests and limits of the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Replaces the default anti-affinity (spread replicas across nodes) when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Replaces the default spread across zones and nodes when set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Extra labels on the pods (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Status fields every Entente kind carries.
///
/// Conditions follow the Kubernetes API conventions: `Ready`, `Reconciling` and
/// `Degraded` (plus kind-specific ones), each with reason, message,
/// lastTransitionTime and observedGeneration, so kstatus, Argo CD and Flux read
/// them without custom code.
pub type Condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The condition types every kind reports.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const RECONCILING: &str = "Reconciling";
    pub const DEGRADED: &str = "Degraded";
    /// kstatus's "failed": progress needs someone to change something.
    pub const STALLED: &str = "Stalled";
}

/// `conditions` as a list keyed by `type`, so server-side apply merges them per type.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = <Vec<Condition>>::json_schema(generator);
    let object = schema.ensure_object();
    object.insert("x-kubernetes-list-type".into(), "map".into());
    object.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

/// Defines a kind's status struct with the common `observedGeneration` and
/// `conditions` fields followed by the kind's own fields.
macro_rules! status_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// The `metadata.generation` this status describes.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub observed_generation: Option<i64>,
            /// `Ready`, `Reconciling`, `Degraded` and kind-specific conditions.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            #[schemars(schema_with = "crate::common::conditions_schema")]
            pub conditions: Vec<crate::common::Condition>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl crate::common::HasConditions for $name {
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn conditions(&self) -> &[crate::common::Condition] {
                &self.conditions
            }
            fn set_observed(&mut self, generation: Option<i64>, conditions: Vec<crate::common::Condition>) {
                self.observed_generation = generation;
                self.conditions = conditions;
            }
        }
    };
}
pub(crate) use status_struct;

/// Read access to the common status fields, whatever the kind.
pub trait HasConditions {
    fn observed_generation(&self) -> Option<i64>;
    fn conditions(&self) -> &[Condition];
    fn set_observed(&mut self, generation: Option<i64>, conditions: Vec<Condition>);

    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions().iter().find(|c| c.type_ == type_)
    }
}
