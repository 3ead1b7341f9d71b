//! Spec → objects, one builder per child kind. Pure: no API calls.

pub mod database;
pub mod deployment;
pub mod ingress;
pub mod migration;
pub mod network_policy;
pub mod pdb;
pub mod runtime_config;
pub mod secrets;
pub mod service;

/// Why a Workspace cannot be built into objects; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Workspace {workspace:?}: {field}: {message}")]
pub struct BuildError {
    pub workspace: String,
    pub field: &'static str,
    pub message: String,
}
