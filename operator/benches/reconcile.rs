//! Reconciles many Workspaces against the in-memory API server and a real
//! S3 server (moto), as the controller would: a first pass that creates
//! everything, then a steady-state pass where nothing changes.
//!
//!     cargo bench -p entente-operator --bench reconcile -- --workspaces 1000 --concurrency 16
//!
//! Prints wall time and reconciles per second for each pass, and the peak RSS
//! of the process — which also holds the in-memory API server and its copy
//! of every object, so the operator alone uses less.

use std::{sync::Arc, time::Instant};

use entente_crds::{
    validate::{parse_manifests, Resource as Manifest},
    Workspace,
};
use entente_e2e::S3Server;
use entente_operator::{
    reconcile::{metrics::Metrics, Context},
    workspace::controller,
};
use futures_util::{stream, StreamExt};
use k8s_openapi::{api::core::v1::Secret, ByteString};
use kube::{api::ObjectMeta, Api};
use kube_fake_client::ClientBuilder;

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| {
            w[1].parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count = flag(&args, "--workspaces", 1000);
    let concurrency = flag(&args, "--concurrency", 16);
    let s3 = S3Server::start().expect("moto starts");

    let text = std::fs::read_to_string(format!(
        "{}/../examples/edge-ddil/edge.yaml",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let template = parse_manifests(&text, "edge.yaml")
        .into_iter()
        .find_map(|r| match r.unwrap() {
            Manifest::Workspace(ws) => Some(*ws),
            _ => None,
        })
        .unwrap();
    let mut builder = ClientBuilder::new()
        .with_resource::<Workspace>()
        .with_object(Secret {
            metadata: ObjectMeta {
                name: Some("edge-s3".into()),
                namespace: Some("bench".into()),
                ..Default::default()
            },
            data: Some(
                [
                    ("AWS_ACCESS_KEY_ID", s3.access_key_id()),
                    ("AWS_SECRET_ACCESS_KEY", s3.secret_access_key()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
            ),
            ..Default::default()
        });
    let names: Vec<String> = (0..count).map(|i| format!("ws-{i:05}")).collect();
    for name in &names {
        let mut ws = template.clone();
        ws.metadata.name = Some(name.clone());
        ws.metadata.namespace = Some("bench".into());
        ws.spec.database.managed = None;
        ws.spec.database.external = Some(
            serde_json::from_value(serde_json::json!({
            "connectionSecret": {"name": "edge-s3", "key": "AWS_ACCESS_KEY_ID"}}))
            .unwrap(),
        );
        ws.spec.object_storage.endpoint = s3.endpoint();
        ws.spec.object_storage.region = s3.region().into();
        ws.spec.object_storage.bucket = format!("bench-{name}");
        builder = builder.with_object(ws);
    }
    let client = builder.build().await.unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let ctx = Arc::new(Context::new(
        client.clone(),
        Metrics::new(&mut registry),
        "entente-system".into(),
        "bench".into(),
    ));
    let api: Api<Workspace> = Api::namespaced(client.clone(), "bench");

    println!(
        "reconciling {count} Workspaces, {concurrency} at a time (external database, moto S3)"
    );
    for pass in ["create", "steady state"] {
        let started = Instant::now();
        let failures = stream::iter(names.iter())
            .map(|name| {
                let (api, ctx) = (api.clone(), ctx.clone());
                async move {
                    let ws = api.get(name).await.unwrap();
                    controller::reconcile(Arc::new(ws), ctx).await.is_err()
                }
            })
            .buffer_unordered(concurrency)
            .filter(|failed| std::future::ready(*failed))
            .count()
            .await;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{pass:>12}: {seconds:7.2} s wall, {:8.1} reconciles/s, {failures} failed",
            count as f64 / seconds
        );
    }
    println!(
        "peak RSS: {:.0} MiB (operator and in-memory API server together)",
        peak_rss_mib()
    );
}
