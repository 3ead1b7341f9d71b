//! The reconcile machinery every controller shares: children applied and
//! pruned ([`children`]), conditions and status written only on change
//! ([`conditions`], [`status`]), the controller loop ([`controller`]),
//! metrics and events ([`context`]), and [`judged`], the reconcile of the
//! kinds that belong to a Workspace.

pub mod children;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod finalizer;
pub mod judged;
pub mod metrics;
pub mod status;

pub use children::Children;
pub use conditions::Health;
pub use context::Context;
pub use controller::Scope;

pub use crate::error::Error;
