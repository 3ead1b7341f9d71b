//! Entente's gRPC protocols, generated from `proto/` at build time. One
//! crate serves both ends: the workspace server implements them, the
//! operator (and tests) call them.

/// The admin API of a workspace server (`entente.admin.v1`).
pub mod admin {
    tonic::include_proto!("entente.admin.v1");
}

/// Federation between partner workspaces (`entente.federation.v1`).
pub mod federation {
    tonic::include_proto!("entente.federation.v1");
}
