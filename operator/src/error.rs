//! The operator's one error type. Each variant says what failed and on which
//! object; `metric_label` names its family in the error metric.

use entente_crds::render::RenderError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot apply {kind} {name:?}: {source}")]
    Apply {
        kind: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error("cannot prune old {kind} objects: {source}")]
    Prune {
        kind: String,
        source: Box<kube::Error>,
    },
    #[error("cannot write the status of a {kind}: {source}")]
    Status {
        kind: String,
        source: Box<kube::Error>,
    },
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        source: Box<kube::Error>,
    },
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error(transparent)]
    Build(#[from] RenderError),
    #[error("object store: {0}")]
    ObjectStore(#[from] entente_s3::Error),
    #[error("federation certificates: {0}")]
    Certificate(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Apply { .. } => "apply",
            Error::Prune { .. } => "prune",
            Error::Status { .. } => "status",
            Error::Read { .. } => "read",
            Error::Finalizer(_) => "finalizer",
            Error::Build(_) => "build",
            Error::ObjectStore(_) => "object_store",
            Error::Certificate(_) => "certificate",
        }
    }

    /// The condition reason this error shows as.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Apply { .. } => "ApplyFailed",
            Error::Prune { .. } => "PruneFailed",
            Error::Status { .. } => "StatusFailed",
            Error::Read { .. } => "ReadFailed",
            Error::Finalizer(_) => "FinalizerFailed",
            Error::Build(_) => "InvalidSpec",
            Error::ObjectStore(_) => "ObjectStoreFailed",
            Error::Certificate(_) => "CertificateFailed",
        }
    }
}
