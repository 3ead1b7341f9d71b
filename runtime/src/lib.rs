//! The Entente workspace server and the `entente` command line.
//!
//! - [`server`]: the workspace server (`entente-server serve` / `migrate`);
//!   its module doc lists what is built and what is not yet.
//! - [`check`]: validates manifests exactly as the API server would (schema
//!   and CEL rules); what `entente validate` runs.
//! - [`up`]: `entente up`, the manifests run on this machine.

pub mod check;
pub mod not_built;
pub mod server;
pub mod up;
