//! Bucket provisioning against a real S3 server (moto, checking signatures).

use entente_e2e::S3Server;
use entente_s3::{delete_bucket, ensure_bucket, BucketOptions, Client, Connection, Deleted};

fn client() -> (Client, String) {
    let s3 = S3Server::shared();
    let connection = Connection {
        endpoint: s3.endpoint(),
        region: s3.region().to_string(),
        force_path_style: true,
        access_key_id: s3.access_key_id().to_string(),
        secret_access_key: s3.secret_access_key().to_string(),
        ca_pem: None,
    };
    (connection.client().unwrap(), s3.region().to_string())
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[tokio::test]
async fn a_missing_bucket_is_created_once_and_found_again() {
    let (client, region) = client();
    let bucket = unique("plain");
    let first = ensure_bucket(&client, &region, &bucket, BucketOptions::default())
        .await
        .unwrap();
    assert!(first.created);
    assert!(!first.versioning && !first.object_lock);
    let again = ensure_bucket(&client, &region, &bucket, BucketOptions::default())
        .await
        .unwrap();
    assert!(!again.created, "the second call finds the bucket");
}

#[tokio::test]
async fn object_lock_brings_versioning_and_is_reported() {
    let (client, region) = client();
    let bucket = unique("locked");
    let options = BucketOptions { object_lock: true };
    let state = ensure_bucket(&client, &region, &bucket, options)
        .await
        .unwrap();
    assert!(state.created && state.versioning && state.object_lock);
    // A locked bucket is never deleted, whatever the policy asks.
    assert_eq!(
        delete_bucket(&client, &bucket).await.unwrap(),
        Deleted::KeptLocked
    );
}

#[tokio::test]
async fn object_lock_is_added_to_an_existing_bucket_or_refused_clearly() {
    let (client, region) = client();
    let bucket = unique("later");
    ensure_bucket(&client, &region, &bucket, BucketOptions::default())
        .await
        .unwrap();
    // Like AWS today, moto can lock an existing bucket once it is versioned;
    // stores that cannot get the "cannot turn it on afterwards" error.
    let state = ensure_bucket(
        &client,
        &region,
        &bucket,
        BucketOptions { object_lock: true },
    )
    .await
    .unwrap();
    assert!(!state.created && state.versioning && state.object_lock);
}

#[tokio::test]
async fn only_an_empty_bucket_is_deleted() {
    let (client, region) = client();
    let bucket = unique("retire");
    ensure_bucket(&client, &region, &bucket, BucketOptions::default())
        .await
        .unwrap();
    client
        .put_object()
        .bucket(&bucket)
        .key("files/one")
        .body(b"kept".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_bucket(&client, &bucket).await.unwrap(),
        Deleted::KeptNotEmpty
    );
    client
        .delete_object()
        .bucket(&bucket)
        .key("files/one")
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_bucket(&client, &bucket).await.unwrap(),
        Deleted::Deleted
    );
    assert_eq!(
        delete_bucket(&client, &bucket).await.unwrap(),
        Deleted::Missing
    );
}

#[tokio::test]
async fn wrong_credentials_are_an_error_not_a_missing_bucket() {
    let s3 = S3Server::shared();
    let client = Connection {
        endpoint: s3.endpoint(),
        region: s3.region().to_string(),
        force_path_style: true,
        access_key_id: s3.access_key_id().to_string(),
        secret_access_key: "not-the-secret".into(),
        ca_pem: None,
    }
    .client()
    .unwrap();
    let error = ensure_bucket(
        &client,
        s3.region(),
        &unique("denied"),
        BucketOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, entente_s3::Error::Denied(_)), "{error}");
    assert!(
        error.to_string().contains("refused the credentials"),
        "{error}"
    );
}
