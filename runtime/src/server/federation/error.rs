//! What goes wrong in federation, by what failed, naming the partner where
//! one is known. The sender records a session's error as the link's last
//! error (the operator copies it into the PartnerConnection's status), so
//! each message says what to fix.

use std::path::{Path, PathBuf};

use crate::server::db;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of this workspace's federation setup (its certificate or key,
    /// a partner's CA bundle) cannot be used.
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },
    /// This workspace's federation settings, as configured.
    #[error("{0}")]
    Setup(String),
    /// The link to a partner failed: connecting, the TLS handshake, or an
    /// error the partner answered with.
    #[error("partner {partner:?} at {endpoint}: {message}")]
    Link {
        partner: String,
        endpoint: String,
        message: String,
    },
    /// The partner broke the protocol.
    #[error("partner {partner:?}: {message}")]
    Protocol { partner: String, message: String },
    /// A connection whose peer did not prove to be a configured partner.
    #[error("{0}")]
    Unidentified(String),
    /// An offline bundle that cannot be read or taken.
    #[error("{0}")]
    Bundle(String),
    #[error("database: {0}")]
    Database(#[from] db::Error),
    #[error("object store: {0}")]
    ObjectStore(String),
    /// The local spool a fetched file is assembled in.
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Database(error.into())
    }
}

impl Error {
    pub(super) fn file(file: &Path, message: impl std::fmt::Display) -> Error {
        Error::File {
            file: file.to_path_buf(),
            message: message.to_string(),
        }
    }

    pub(super) fn protocol(partner: &str, message: impl Into<String>) -> Error {
        Error::Protocol {
            partner: partner.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn object_store(error: impl std::fmt::Display) -> Error {
        Error::ObjectStore(error.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
