//! Provisioning and retiring a workspace's bucket.
//!
//! Both are idempotent: the operator calls them on every reconcile and after
//! restarts. Deleting is conservative — a bucket that holds anything, or is
//! under Object Lock, is never deleted, whatever the policy says.

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    ObjectLockConfiguration, ObjectLockEnabled, VersioningConfiguration,
};

use crate::{request_error, Client, Error};

/// What the bucket must support.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketOptions {
    /// Object Lock (retention and legal holds on objects); implies versioning.
    pub object_lock: bool,
}

/// What the bucket is, after [`ensure_bucket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketState {
    /// Whether this call created it.
    pub created: bool,
    pub versioning: bool,
    pub object_lock: bool,
}

/// Creates `bucket` if missing (one that already belongs to us is success)
/// and turns on what `options` needs. A store that cannot do it gets an
/// error that says which capability is missing.
pub async fn ensure_bucket(
    client: &Client,
    region: &str,
    bucket: &str,
    options: BucketOptions,
) -> Result<BucketState, Error> {
    let created = match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => false,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
            create(client, region, bucket, options).await?
        }
        Err(e) => return Err(request_error(e)),
    };
    let mut state = BucketState {
        created,
        versioning: versioning(client, bucket).await?,
        object_lock: object_lock(client, bucket).await?,
    };
    if options.object_lock {
        if !state.versioning {
            client
                .put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    Error::Refused(format!(
                        "bucket {bucket:?} needs versioning for Object Lock, and the store \
                         refused to turn it on: {}",
                        request_error(e)
                    ))
                })?;
            state.versioning = true;
        }
        if !state.object_lock {
            // Stores that only allow Object Lock at creation refuse this.
            client
                .put_object_lock_configuration()
                .bucket(bucket)
                .object_lock_configuration(
                    ObjectLockConfiguration::builder()
                        .object_lock_enabled(ObjectLockEnabled::Enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    Error::Refused(format!(
                        "bucket {bucket:?} exists without Object Lock and the store cannot \
                         turn it on afterwards ({}); use a new bucket name, or set \
                         spec.objectStorage.objectLock to false",
                        request_error(e)
                    ))
                })?;
            state.object_lock = true;
        }
    }
    Ok(state)
}

async fn create(
    client: &Client,
    region: &str,
    bucket: &str,
    options: BucketOptions,
) -> Result<bool, Error> {
    let mut request = client
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(options.object_lock);
    // us-east-1 is the one region S3 wants no location constraint for.
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(s) if s.is_bucket_already_owned_by_you() => Ok(false),
            Some(s) if s.is_bucket_already_exists() => Err(Error::Refused(format!(
                "bucket {bucket:?} belongs to another account; choose another \
                 spec.objectStorage.bucket"
            ))),
            _ => Err(if options.object_lock {
                Error::Refused(format!(
                    "cannot create bucket {bucket:?} with Object Lock — the store may not \
                     support it: {}",
                    request_error(e)
                ))
            } else {
                request_error(e)
            }),
        },
    }
}

async fn versioning(client: &Client, bucket: &str) -> Result<bool, Error> {
    match client.get_bucket_versioning().bucket(bucket).send().await {
        Ok(answer) => Ok(answer.status() == Some(&BucketVersioningStatus::Enabled)),
        // Some stores (moto among them) answer 200 with a differently named
        // root element, which the SDK cannot parse; the status inside is
        // what matters.
        Err(e) => match e.raw_response() {
            // A store without versioning (s3s-fs among them) has none on.
            Some(raw) if raw.status().as_u16() == 501 => Ok(false),
            Some(raw) if raw.status().is_success() => Ok(raw
                .body()
                .bytes()
                .is_some_and(|body| contains(body, b"<Status>Enabled</Status>"))),
            _ => Err(request_error(e)),
        },
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn object_lock(client: &Client, bucket: &str) -> Result<bool, Error> {
    match client
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(answer) => Ok(answer
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            == Some(&ObjectLockEnabled::Enabled)),
        // "ObjectLockConfigurationNotFoundError": no lock configured; 501:
        // a store without Object Lock.
        Err(e)
            if e.raw_response()
                .is_some_and(|r| matches!(r.status().as_u16(), 404 | 501)) =>
        {
            Ok(false)
        }
        Err(e) => Err(request_error(e)),
    }
}

/// What [`delete_bucket`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// There was no such bucket.
    Missing,
    /// Kept: it still holds objects (or object versions).
    KeptNotEmpty,
    /// Kept: Object Lock may protect what it held or will hold.
    KeptLocked,
}

/// Deletes `bucket` only if it is empty and not under Object Lock.
pub async fn delete_bucket(client: &Client, bucket: &str) -> Result<Deleted, Error> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
            return Ok(Deleted::Missing)
        }
        Err(e) => return Err(request_error(e)),
    }
    if object_lock(client, bucket).await? {
        return Ok(Deleted::KeptLocked);
    }
    let versions = client
        .list_object_versions()
        .bucket(bucket)
        .max_keys(1)
        .send()
        .await
        .map_err(request_error)?;
    if !versions.versions().is_empty() || !versions.delete_markers().is_empty() {
        return Ok(Deleted::KeptNotEmpty);
    }
    let objects = client
        .list_objects_v2()
        .bucket(bucket)
        .max_keys(1)
        .send()
        .await
        .map_err(request_error)?;
    if objects.key_count().unwrap_or(0) > 0 || !objects.contents().is_empty() {
        return Ok(Deleted::KeptNotEmpty);
    }
    match client.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(Deleted::Deleted),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
            Ok(Deleted::Missing)
        }
        // BucketNotEmpty: something arrived since we looked.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 409) => {
            Ok(Deleted::KeptNotEmpty)
        }
        Err(e) => Err(request_error(e)),
    }
}
