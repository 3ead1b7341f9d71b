//! The Entente workspace server and the `entente` command line.
//!
//! Built so far: [`check`], which validates manifests exactly as the API server
//! would (schema and CEL rules) and is what `entente validate` runs.
//!
//! Not built yet (each binary says so and exits with status 2): the server
//! itself (`entente-server serve`/`migrate`, issue "Workspace server core"),
//! and `entente up` (issue "`entente up`").

pub mod check;
pub mod not_built;
