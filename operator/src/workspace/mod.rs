//! The Workspace controller's pure half: what a Workspace becomes.
//!
//! Built so far: the RuntimeConfig, the server Deployment, its Services and
//! PodDisruptionBudget, all as pure functions of the spec, unit tested.
//! Not built yet: NetworkPolicies, the CloudNativePG Cluster, the bucket,
//! the federation certificates, the apply/prune/status pipeline.

pub mod build;
pub mod layout;
