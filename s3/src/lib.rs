//! How Entente reaches an S3-compatible object store, in one place for the
//! server (file contents) and the operator (bucket provisioning).
//!
//! Path-style addressing where asked, and checksums only where the S3 API
//! requires them: stores other than AWS (MinIO, Ceph, moto, s3s) reject or
//! mishandle the SDK's default CRC checksums. TLS is rustls with ring, trusting
//! the system roots plus an optional private CA.

mod bucket;

pub use aws_sdk_s3::Client;
pub use bucket::{delete_bucket, ensure_bucket, BucketOptions, BucketState, Deleted};

use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_smithy_http_client::tls;

/// Where a store is and who we are to it.
#[derive(Clone)]
pub struct Connection {
    pub endpoint: String,
    pub region: String,
    pub force_path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// PEM certificates of a private CA the endpoint's certificate chains to.
    pub ca_pem: Option<Vec<u8>>,
}

// Credentials never reach logs through Debug.
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("ca_pem", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the object store's CA bundle cannot be used: {0}")]
    Ca(String),
    /// The store could not be reached, or failed; worth retrying. The text
    /// is the SDK's full error chain, which names the store's own code and
    /// message.
    #[error("{0}")]
    Request(String),
    /// The store refused our credentials (401/403): retrying will not help
    /// until someone fixes them.
    #[error("the object store refused the credentials: {0}")]
    Denied(String),
    #[error("{0}")]
    Refused(String),
}

/// The SDK's error with its whole cause chain ("service error: NoSuchBucket: …").
pub fn request_error<E: std::error::Error + Send + Sync + 'static>(
    error: aws_sdk_s3::error::SdkError<E>,
) -> Error {
    let status = error.raw_response().map(|r| r.status().as_u16());
    let text = aws_sdk_s3::error::DisplayErrorContext(&error).to_string();
    match status {
        Some(401 | 403) => Error::Denied(text),
        _ => Error::Request(text),
    }
}

impl Connection {
    pub fn client(&self) -> Result<Client, Error> {
        let mut builder = aws_smithy_http_client::Builder::new().tls_provider(
            tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring),
        );
        if let Some(pem) = &self.ca_pem {
            let store = tls::TrustStore::default().with_pem_certificate(pem.clone());
            let context = tls::TlsContext::builder()
                .with_trust_store(store)
                .build()
                .map_err(|e| Error::Ca(e.to_string()))?;
            builder = builder.tls_context(context);
        }
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .force_path_style(self.force_path_style)
            .credentials_provider(aws_credential_types::Credentials::new(
                self.access_key_id.clone(),
                self.secret_access_key.clone(),
                None,
                None,
                "entente",
            ))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .http_client(builder.build_https())
            .build();
        Ok(Client::from_conf(config))
    }
}
