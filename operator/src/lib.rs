//! The Entente operator: one controller per kind.
//!
//! - [`reconcile`]: the machinery every controller shares (apply, prune,
//!   status, events, metrics, the controller loop).
//! - [`workspace`]: the Workspace controller.
//! - [`partners`], [`policies`], [`calls`]: PartnerConnections,
//!   GuestPolicies and AccessPolicies, CallsClusters, and what each renders
//!   into its Workspaces' config.
//! - [`pending`]: the kinds whose behaviour is not built yet; their
//!   controllers check references and report `Ready=False, NotImplemented`.
//! - [`leader`], [`startup`], [`rbac`]: running as one leader, refusing to
//!   start without CRDs or permissions, and the permissions themselves.

pub mod admin;
pub mod calls;
pub mod error;
pub mod http;
pub mod identity;
pub mod labels;
pub mod leader;
pub mod models;
pub mod partners;
pub mod pending;
pub mod pod;
pub mod policies;
pub mod random;
pub mod rbac;
pub mod reconcile;
pub mod run;
pub mod startup;
pub mod workspace;
