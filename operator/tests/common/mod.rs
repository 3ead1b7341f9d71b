//! An in-memory cluster (kube-fake-client) seeded like a real namespace, and
//! the real S3 server of the test infrastructure for buckets.

#![allow(dead_code)]

use std::{borrow::Cow, path::Path, sync::Arc};

use entente_crds::{
    validate::{parse_manifests, Resource as Manifest},
    AccessPolicy, Bridge, CallsCluster, GuestPolicy, LanguageModel, LegalHold, PartnerConnection,
    Workspace,
};
use entente_e2e::S3Server;
use entente_operator::reconcile::{metrics::Metrics, Context};
use k8s_openapi::{
    api::{apps::v1::Deployment, batch::v1::Job, core::v1::Secret},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ByteString, NamespaceResourceScope,
};
use kube::{api::Api, Client, Resource};
use kube_fake_client::ClientBuilder;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const NAMESPACE: &str = "edge";

/// CloudNativePG's Cluster, enough for the fake API server to serve it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CnpgCluster {
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub status: Value,
}

impl Resource for CnpgCluster {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;
    fn kind(_: &()) -> Cow<'_, str> {
        "Cluster".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "postgresql.cnpg.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "clusters".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The first object of the edge example that `pick` takes.
pub fn edge_example<T>(pick: impl Fn(Manifest) -> Option<T>) -> T {
    example("edge-ddil/edge.yaml", pick)
}

/// The first object of `examples/<file>` that `pick` takes.
pub fn example<T>(file: &str, pick: impl Fn(Manifest) -> Option<T>) -> T {
    let path =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    parse_manifests(&text, file)
        .into_iter()
        .find_map(|r| pick(r.unwrap()))
        .unwrap_or_else(|| panic!("{file} has one"))
}

/// The edge example's workspace, pointed at the test S3 server and a bucket
/// of its own.
pub fn workspace(bucket: &str) -> Workspace {
    let mut workspace = edge_example(|r| match r {
        Manifest::Workspace(ws) => Some(*ws),
        _ => None,
    });
    let s3 = S3Server::shared();
    workspace.metadata.namespace = Some(NAMESPACE.into());
    let storage = &mut workspace.spec.object_storage;
    storage.endpoint = s3.endpoint();
    storage.region = s3.region().into();
    storage.bucket = bucket.into();
    workspace
}

/// A bucket name no other test uses.
pub fn bucket(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The S3 credentials Secret the edge example names.
pub fn s3_secret() -> Secret {
    let s3 = S3Server::shared();
    secret(
        "edge-s3",
        &[
            ("AWS_ACCESS_KEY_ID", s3.access_key_id()),
            ("AWS_SECRET_ACCESS_KEY", s3.secret_access_key()),
        ],
    )
}

pub struct Options {
    /// Whether the cluster serves CloudNativePG's Cluster API.
    pub cloudnative_pg: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cloudnative_pg: true,
        }
    }
}

/// A fake cluster holding `workspace` and `secrets`.
pub async fn cluster(
    workspace: Option<&Workspace>,
    secrets: Vec<Secret>,
    options: Options,
) -> Client {
    let mut builder = ClientBuilder::new()
        .with_resource::<Workspace>()
        .with_resource::<PartnerConnection>()
        .with_resource::<GuestPolicy>()
        .with_resource::<AccessPolicy>()
        .with_resource::<CallsCluster>()
        .with_resource::<LanguageModel>()
        .with_resource::<Bridge>()
        .with_resource::<LegalHold>()
        .with_status_subresource::<Deployment>()
        .with_status_subresource::<Job>();
    if options.cloudnative_pg {
        builder = builder.with_resource::<CnpgCluster>();
    }
    for secret in secrets {
        builder = builder.with_object(secret);
    }
    if let Some(workspace) = workspace {
        builder = builder.with_object(workspace.clone());
    }
    builder.build().await.unwrap()
}

pub fn context(client: &Client) -> Arc<Context> {
    let mut registry = prometheus_client::registry::Registry::default();
    Arc::new(Context::new(
        client.clone(),
        Metrics::new(&mut registry),
        "entente-system".into(),
        "test".into(),
    ))
}

pub fn api<K>(client: &Client) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(client.clone(), NAMESPACE)
}
