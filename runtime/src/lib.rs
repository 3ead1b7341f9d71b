//! The Entente workspace server and the `entente` command line.
//!
//! - [`server`]: the workspace server (`entente-server serve` / `migrate`);
//!   its module doc lists what is built and what is not yet.
//! - [`check`]: validates manifests exactly as the API server would (schema
//!   and CEL rules); what `entente validate` runs.
//!
//! Not built yet (the command says so and exits with status 2): `entente up`.

pub mod check;
pub mod not_built;
pub mod server;
