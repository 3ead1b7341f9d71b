//! The object store (any S3-compatible server) that holds file contents.
//!
//! Path-style addressing and checksums only where the API requires them, so
//! stores other than AWS (MinIO, Ceph, moto, s3s) work as they are.

use std::path::Path;

use aws_sdk_s3::{primitives::ByteStream, Client};
use entente_crds::config::ObjectStorageConfig;
use entente_s3::request_error;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the object-store {what}: {source}")]
    Secret {
        what: &'static str,
        source: entente_crds::config::SecretError,
    },
    #[error("cannot read the object-store CA file {path}: {source}")]
    Ca {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("object store: {0}")]
    Request(#[from] entente_s3::Error),
}

#[derive(Clone)]
pub struct ObjectStore {
    client: Client,
    bucket: String,
    region: String,
}

impl ObjectStore {
    pub fn new(config: &ObjectStorageConfig) -> Result<ObjectStore, StoreError> {
        let secret = |what, source: &entente_crds::config::SecretSource| {
            source
                .read()
                .map_err(|source| StoreError::Secret { what, source })
        };
        let ca_pem = match &config.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|source| StoreError::Ca {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let connection = entente_s3::Connection {
            endpoint: config.endpoint.clone(),
            region: config.region.clone(),
            force_path_style: config.force_path_style,
            access_key_id: secret("access key id", &config.access_key_id)?,
            secret_access_key: secret("secret access key", &config.secret_access_key)?,
            ca_pem,
        };
        Ok(ObjectStore {
            client: connection.client()?,
            bucket: config.bucket.clone(),
            region: config.region.clone(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket if it does not exist (the operator or `entente up`
    /// normally has; this is for them and for tests).
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        entente_s3::ensure_bucket(
            &self.client,
            &self.region,
            &self.bucket,
            entente_s3::BucketOptions::default(),
        )
        .await?;
        Ok(())
    }

    /// Whether the bucket is reachable with our credentials.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from(request_error(e)))
    }

    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| entente_s3::Error::Request(format!("cannot read the upload: {e}")))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from(request_error(e)))
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
            .map_err(|e| StoreError::from(request_error(e)))
    }

    /// The bytes of `key` from byte `offset` on.
    pub async fn get_from(&self, key: &str, offset: u64) -> Result<ByteStream, StoreError> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(key);
        if offset > 0 {
            request = request.range(format!("bytes={offset}-"));
        }
        request
            .send()
            .await
            .map(|o| o.body)
            .map_err(|e| StoreError::from(request_error(e)))
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from(request_error(e)))
    }
}
