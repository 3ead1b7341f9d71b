//! The Entente operator: one controller per kind.
//!
//! Not built yet: the binary says so and exits with status 2 (the "Operator"
//! issue). The chart's RBAC already grants exactly what the controllers
//! described in DESIGN.md will use; see `charts/entente/templates/rbac.yaml`.

/// Status for "this command is not built yet".
pub const NOT_BUILT: u8 = 2;
