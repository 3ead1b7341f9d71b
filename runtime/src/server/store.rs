//! The object store (any S3-compatible server) that holds file contents.
//!
//! Path-style addressing and checksums only where the API requires them, so
//! stores other than AWS (MinIO, Ceph, moto, s3s) work as they are.

use std::path::Path;

use aws_sdk_s3::{
    config::{BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation},
    primitives::ByteStream,
    Client,
};
use entente_crds::config::ObjectStorageConfig;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the object-store {what}: {source}")]
    Secret {
        what: &'static str,
        source: entente_crds::config::SecretError,
    },
    #[error("object store: {0}")]
    Request(String),
}

fn request_error<E: std::error::Error + Send + Sync + 'static>(
    error: aws_sdk_s3::error::SdkError<E>,
) -> StoreError {
    StoreError::Request(aws_sdk_s3::error::DisplayErrorContext(&error).to_string())
}

#[derive(Clone)]
pub struct ObjectStore {
    client: Client,
    bucket: String,
}

impl ObjectStore {
    pub fn new(config: &ObjectStorageConfig) -> Result<ObjectStore, StoreError> {
        let access_key = config
            .access_key_id
            .read()
            .map_err(|source| StoreError::Secret {
                what: "access key id",
                source,
            })?;
        let secret_key = config
            .secret_access_key
            .read()
            .map_err(|source| StoreError::Secret {
                what: "secret access key",
                source,
            })?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .endpoint_url(&config.endpoint)
            .force_path_style(config.force_path_style)
            .credentials_provider(aws_credential_types::Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "entente-runtime-config",
            ))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .http_client(http)
            .build();
        Ok(ObjectStore {
            client: Client::from_conf(s3),
            bucket: config.bucket.clone(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket if it does not exist (the operator or `entente up`
    /// normally has; this is for them and for tests).
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(s) if s.is_bucket_already_owned_by_you() => Ok(()),
                _ => Err(request_error(e)),
            },
        }
    }

    /// Whether the bucket is reachable with our credentials.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(request_error)
    }

    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StoreError::Request(format!("cannot read the upload: {e}")))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(request_error)
    }

    /// The object's bytes as a stream.
    pub async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|o| o.body)
            .map_err(request_error)
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(request_error)
    }
}
