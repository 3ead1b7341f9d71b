//! The Workspace controller's pure half: what a Workspace becomes.
//!
//! Built so far: the RuntimeConfig, the server Deployment and the migration
//! Job (one pod template), its Services, PodDisruptionBudget, Ingress and
//! NetworkPolicies, and the CloudNativePG objects of a managed database, all
//! as pure functions of the spec, unit tested.
//! Not built yet: the bucket, the federation certificates, and the
//! dereference/apply/prune/status pipeline that uses these builders.

pub mod build;
pub mod layout;
