//! The `entente.dev/v1alpha1` API and the contract between the operator and the
//! processes it runs.
//!
//! - One module per kind: the spec a cluster admin writes and the status the
//!   operator reports. Cross-field rules are CEL `x-kubernetes-validations`
//!   carried in the generated CRDs, so the API server enforces them.
//! - [`config`]: `RuntimeConfig` and `MediaConfig`, what the operator renders
//!   for the server and media processes.
//! - [`crd`]: the list of CRDs and their YAML, as `crdgen` writes them.
//! - `policy` (feature `policy`): access-policy expressions, compiled with
//!   ranked attributes compared by rank and evaluated for one user and channel.
//! - `render` (feature `render`): the one renderer of a workspace server's
//!   RuntimeConfig, shared by the operator and `entente up`.
//! - `validate` (feature `validate`): evaluates a manifest against the
//!   generated schema and its CEL rules without an API server.
//!
//! Light by design: no async runtime, no database, no network.

// kube's `#[kube(printcolumn(type_ = …), printcolumn(type_ = …))]` repeats keys
// inside separate columns, which this lint misreads as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod access_policy;
pub mod bridge;
pub mod calls_cluster;
pub mod common;
pub mod config;
pub mod crd;
pub mod guest_policy;
pub mod join_token;
pub mod language_model;
pub mod legal_hold;
pub mod partner_connection;
#[cfg(feature = "policy")]
pub mod policy;
#[cfg(feature = "render")]
pub mod render;
#[cfg(feature = "validate")]
pub mod validate;
pub mod workspace;

pub use access_policy::{AccessPolicy, AccessPolicySpec, AccessPolicyStatus};
pub use bridge::{Bridge, BridgeSpec, BridgeStatus};
pub use calls_cluster::{CallsCluster, CallsClusterSpec, CallsClusterStatus};
pub use guest_policy::{GuestPolicy, GuestPolicySpec, GuestPolicyStatus};
pub use language_model::{LanguageModel, LanguageModelSpec, LanguageModelStatus};
pub use legal_hold::{LegalHold, LegalHoldSpec, LegalHoldStatus};
pub use partner_connection::{PartnerConnection, PartnerConnectionSpec, PartnerConnectionStatus};
pub use workspace::{Workspace, WorkspaceSpec, WorkspaceStatus};

/// API group of every Entente kind.
pub const GROUP: &str = "entente.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Every Entente kind, in the order `crd::all` lists them.
pub const KINDS: &[&str] = &[
    "Workspace",
    "PartnerConnection",
    "GuestPolicy",
    "AccessPolicy",
    "CallsCluster",
    "LanguageModel",
    "Bridge",
    "LegalHold",
];

/// What every Entente kind shares, for code that handles them alike (the
/// operator's status writer, the not-yet-built controllers).
pub trait Kind:
    kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    type Status: common::HasConditions
        + Clone
        + Default
        + PartialEq
        + std::fmt::Debug
        + serde::Serialize
        + Send
        + Sync;

    fn status(&self) -> Option<&Self::Status>;
    /// The Workspace this object belongs to; `None` for a Workspace and the
    /// shared kinds (CallsCluster, LanguageModel) that workspaces reference.
    fn workspace_ref(&self) -> Option<&str>;
}

macro_rules! kind {
    ($kind:ty, $status:ty, $($workspace:tt)*) => {
        impl Kind for $kind {
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            #[allow(unused_variables)]
            fn workspace_ref(&self) -> Option<&str> {
                kind!(@ws self $($workspace)*)
            }
        }
    };
    (@ws $self:ident workspace_ref) => { Some(&$self.spec.workspace_ref) };
    (@ws $self:ident none) => { None };
}

kind!(Workspace, WorkspaceStatus, none);
kind!(PartnerConnection, PartnerConnectionStatus, workspace_ref);
kind!(GuestPolicy, GuestPolicyStatus, workspace_ref);
kind!(AccessPolicy, AccessPolicyStatus, workspace_ref);
kind!(CallsCluster, CallsClusterStatus, none);
kind!(LanguageModel, LanguageModelStatus, none);
kind!(Bridge, BridgeStatus, workspace_ref);
kind!(LegalHold, LegalHoldStatus, workspace_ref);
