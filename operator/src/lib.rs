//! The Entente operator: one controller per kind.
//!
//! Built so far: the Workspace controller's pure builders (spec → RuntimeConfig,
//! Deployment, Services, PodDisruptionBudget) in [`workspace`], unit tested.
//! Not built yet: the controllers themselves (watch, apply, prune, status,
//! leader election) — the binary says so and exits with status 2 (the
//! "Operator" issue). The chart's RBAC already grants exactly what the
//! controllers described in DESIGN.md will use.

pub mod labels;
pub mod quantity;
pub mod workspace;

/// Status for "this command is not built yet".
pub const NOT_BUILT: u8 = 2;
