//! The Workspace controller's pure half: what a Workspace becomes.
//!
//! Built so far: the RuntimeConfig, the server Deployment, its Services and
//! PodDisruptionBudget, NetworkPolicies, and the CloudNativePG objects of a
//! managed database, all as pure functions of the spec, unit tested.
//! Not built yet: the bucket, the federation certificates, migration Jobs,
//! the Ingress, the apply/prune/status pipeline.

pub mod build;
pub mod layout;
