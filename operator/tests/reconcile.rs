//! The Workspace controller against an in-memory API server
//! (kube-fake-client: server-side apply, resourceVersions, finalizers,
//! garbage collection) and a real S3 server.

mod common;

use std::sync::Arc;

use common::*;
use entente_crds::render::certs;
use entente_crds::{common::HasConditions, config::RuntimeConfig, Workspace};
use entente_operator::workspace::controller;
use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::Job,
    core::v1::{Secret, Service},
    networking::v1::NetworkPolicy,
    policy::v1::PodDisruptionBudget,
};
use kube::{
    api::{ListParams, Patch, PatchParams},
    Client, ResourceExt,
};
use serde_json::json;

/// Whether the fake cluster holds a `K` called `name`.
async fn exists<K>(client: &Client, name: &str) -> bool
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    api::<K>(client).get_opt(name).await.unwrap().is_some()
}

/// Runs one reconcile of `name` as a freshly started controller would.
async fn reconcile(client: &Client, name: &str) -> kube::runtime::controller::Action {
    reconcile_with(&context(client), client, name).await
}

/// Runs one reconcile of `name` as a long-running controller with `ctx` would.
async fn reconcile_with(
    ctx: &Arc<entente_operator::reconcile::Context>,
    client: &Client,
    name: &str,
) -> kube::runtime::controller::Action {
    let workspace = api::<Workspace>(client).get(name).await.unwrap();
    controller::reconcile(Arc::new(workspace), ctx.clone())
        .await
        .unwrap()
}

/// Reconciles twice, as the controller would when its own first writes
/// wake it again.
async fn settle(client: &Client, name: &str) {
    reconcile(client, name).await;
    reconcile(client, name).await;
}

async fn status(client: &Client, name: &str) -> entente_crds::WorkspaceStatus {
    api::<Workspace>(client)
        .get(name)
        .await
        .unwrap()
        .status
        .expect("the controller wrote a status")
}

fn condition<'a>(
    status: &'a entente_crds::WorkspaceStatus,
    type_: &str,
) -> &'a entente_crds::common::Condition {
    status
        .condition(type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", status.conditions))
}

async fn patch_spec(client: &Client, name: &str, spec: serde_json::Value) {
    api::<Workspace>(client)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .unwrap();
}

/// What the Deployment controller would report once `replicas` pods of the
/// current template are up.
async fn deployment_is_up(client: &Client, name: &str, replicas: i32) {
    let deployments = api::<Deployment>(client);
    let generation = deployments.get(name).await.unwrap().metadata.generation;
    deployments
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "observedGeneration": generation,
                "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas,
            }})),
        )
        .await
        .unwrap();
}

/// What CloudNativePG would report once the database is up.
async fn database_is_up(client: &Client, cluster: &str) {
    api::<CnpgCluster>(client)
        .patch_status(
            cluster,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "phase": "Cluster in healthy state", "readyInstances": 1, "instances": 1,
                "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady",
                                "message": "Cluster is Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            }})),
        )
        .await
        .unwrap();
}

/// The image of each migration Job, and the Jobs' names.
async fn migration_jobs(client: &Client) -> Vec<(String, String)> {
    api::<Job>(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|job| {
            let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            let container = &pod.containers[0];
            assert!(container
                .args
                .as_ref()
                .unwrap()
                .contains(&"migrate".to_string()));
            (job.name_any(), container.image.clone().unwrap())
        })
        .collect()
}

/// Asks for `image` and reconciles once; returns the one migration Job,
/// which must run `image`.
async fn change_image(client: &Client, image: &str) -> String {
    patch_spec(client, "fob-north", json!({"pod": {"image": image}})).await;
    reconcile(client, "fob-north").await;
    let running = migration_jobs(client).await;
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].1, image);
    running[0].0.clone()
}

fn image_of(deployment: &Deployment) -> String {
    entente_operator::workspace::rollout::deployed_image(deployment)
        .unwrap()
        .to_string()
}

async fn s3_client() -> entente_s3::Client {
    let s3 = entente_e2e::S3Server::shared();
    entente_s3::Connection {
        endpoint: s3.endpoint(),
        region: s3.region().into(),
        force_path_style: true,
        access_key_id: s3.access_key_id().into(),
        secret_access_key: s3.secret_access_key().into(),
        ca_pem: None,
    }
    .client()
    .unwrap()
}

async fn bucket_exists(bucket: &str) -> bool {
    s3_client()
        .await
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn a_new_workspace_gets_every_child_its_bucket_and_an_honest_status() {
    let bucket = bucket("create");
    let ws = workspace(&bucket);
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    settle(&client, "fob-north").await;

    // The server Deployment, never below its replicas during a rollout.
    let deployment = api::<Deployment>(&client).get("fob-north").await.unwrap();
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    let rolling = spec
        .strategy
        .as_ref()
        .unwrap()
        .rolling_update
        .as_ref()
        .unwrap();
    assert_eq!(
        rolling.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0))
    );
    let owner = &deployment.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Workspace", Some(true))
    );
    assert!(deployment
        .managed_fields()
        .iter()
        .all(|f| f.manager.as_deref() != Some("")));

    let services: Vec<String> = api::<Service>(&client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    assert_eq!(services.len(), 3, "{services:?}");
    assert!(
        api::<PodDisruptionBudget>(&client)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "one replica gets no PDB"
    );
    assert!(!api::<NetworkPolicy>(&client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());

    // The rendered RuntimeConfig is one the server accepts.
    let secrets = api::<Secret>(&client);
    let runtime = secrets.get("fob-north-runtime").await.unwrap();
    let text = String::from_utf8(runtime.data.unwrap()["runtime.yaml"].0.clone()).unwrap();
    let config = RuntimeConfig::parse(&text, "fob-north-runtime").unwrap();
    assert_eq!(config.object_storage.bucket, bucket);

    // Federation CA and a certificate for the workspace's identity.
    let tls = secrets.get("fob-north-federation-tls").await.unwrap();
    let cert = String::from_utf8(tls.data.as_ref().unwrap()["tls.crt"].0.clone()).unwrap();
    let facts = certs::read(&cert).unwrap();
    assert_eq!(facts.dns_names[0], "fob-north.edge.entente.local");
    assert!(
        !tls.data.as_ref().unwrap().contains_key("ca.key"),
        "the CA key never goes where pods mount"
    );

    // A generated admin password, kept across reconciles.
    let password = secrets.get("fob-north-admin").await.unwrap().data.unwrap()["password"].clone();
    assert_eq!(password.0.len(), 24);

    // The managed database: a CloudNativePG Cluster that outlives the
    // Workspace under the default Retain policy, so it has no owner.
    let cluster_object = api::<CnpgCluster>(&client)
        .get("fob-north-db")
        .await
        .unwrap();
    assert!(cluster_object.owner_references().is_empty());

    assert!(bucket_exists(&bucket).await);

    let generation = api::<Workspace>(&client)
        .get("fob-north")
        .await
        .unwrap()
        .metadata
        .generation;
    let status = status(&client, "fob-north").await;
    assert_eq!(status.observed_generation, generation);
    assert_eq!(condition(&status, "Ready").status, "False");
    assert_eq!(condition(&status, "Reconciling").status, "True");
    assert_eq!(condition(&status, "Ready").reason, "DatabaseNotReady");
    assert!(status.bucket.as_ref().unwrap().ready);
    assert!(status.federation_certificate_expiry.is_some());
    assert_eq!(
        status.endpoints.as_ref().unwrap().federation.as_deref(),
        Some("fob-north-federation.edge.svc:8443")
    );

    // Important transitions are recorded as Events on the Workspace.
    let events = api::<k8s_openapi::api::events::v1::Event>(&client)
        .list(&ListParams::default())
        .await
        .unwrap();
    let reasons: Vec<_> = events
        .items
        .iter()
        .filter_map(|e| e.reason.clone())
        .collect();
    for reason in ["BucketCreated", "CertificateIssued"] {
        assert!(reasons.iter().any(|r| r == reason), "{reasons:?}");
    }

    // Nothing changed: a further reconcile writes nothing at all.
    let before = api::<Workspace>(&client)
        .get("fob-north")
        .await
        .unwrap()
        .resource_version();
    reconcile(&client, "fob-north").await;
    let after = api::<Workspace>(&client)
        .get("fob-north")
        .await
        .unwrap()
        .resource_version();
    assert_eq!(before, after, "an unchanged status is not rewritten");
    let again = secrets.get("fob-north-admin").await.unwrap().data.unwrap()["password"].clone();
    assert_eq!(password, again);
    let tls_again = secrets.get("fob-north-federation-tls").await.unwrap();
    assert_eq!(tls.data, tls_again.data, "a good certificate is kept");
}

#[tokio::test]
async fn ready_only_when_database_and_servers_are_and_the_transition_time_holds() {
    let ws = workspace(&bucket("ready"));
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    settle(&client, "fob-north").await;
    database_is_up(&client, "fob-north-db").await;
    reconcile(&client, "fob-north").await;
    let rolling = status(&client, "fob-north").await;
    assert_eq!(condition(&rolling, "Ready").reason, "RollingOut");
    assert_eq!(condition(&rolling, "DatabaseReady").status, "True");

    deployment_is_up(&client, "fob-north", 1).await;
    reconcile(&client, "fob-north").await;
    let ready = status(&client, "fob-north").await;
    assert_eq!(condition(&ready, "Ready").status, "True");
    assert_eq!(condition(&ready, "Stalled").status, "False");
    assert_eq!(ready.ready_replicas, Some(1));
    assert_eq!(
        ready.database.as_ref().unwrap().phase.as_deref(),
        Some("Cluster in healthy state")
    );
    let since = condition(&ready, "Ready").last_transition_time.clone();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The fake API server bumps a Deployment's generation on every apply,
    // even an unchanged one; report the Deployment caught up, as it would.
    deployment_is_up(&client, "fob-north", 1).await;
    reconcile(&client, "fob-north").await;
    assert_eq!(
        condition(&status(&client, "fob-north").await, "Ready").last_transition_time,
        since
    );
}

#[tokio::test]
async fn scaling_adds_and_prunes_the_disruption_budget() {
    let ws = workspace(&bucket("scale"));
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    // One long-running controller throughout: what it remembers of its last
    // prune must not hide a child that became unwanted.
    let ctx = context(&client);
    reconcile_with(&ctx, &client, "fob-north").await;
    patch_spec(&client, "fob-north", json!({"replicas": 3})).await;
    reconcile_with(&ctx, &client, "fob-north").await;
    let deployment = api::<Deployment>(&client).get("fob-north").await.unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(3));
    let pdbs = api::<PodDisruptionBudget>(&client);
    assert_eq!(
        pdbs.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let generation = api::<Workspace>(&client)
        .get("fob-north")
        .await
        .unwrap()
        .metadata
        .generation;
    assert_eq!(
        status(&client, "fob-north").await.observed_generation,
        generation
    );

    // A Service a person made with the same labels, not owned by the
    // Workspace, must survive pruning.
    let mut foreign = api::<Service>(&client).get("fob-north").await.unwrap();
    foreign.metadata = kube::api::ObjectMeta {
        name: Some("hand-made".into()),
        namespace: Some(NAMESPACE.into()),
        labels: foreign.metadata.labels.clone(),
        ..Default::default()
    };
    foreign.spec.as_mut().unwrap().cluster_ip = None;
    api::<Service>(&client)
        .create(&Default::default(), &foreign)
        .await
        .unwrap();

    patch_spec(&client, "fob-north", json!({"replicas": 1})).await;
    reconcile_with(&ctx, &client, "fob-north").await;
    assert!(
        pdbs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "the PDB is pruned"
    );
    assert!(exists::<Service>(&client, "hand-made").await);
}

#[tokio::test]
async fn a_new_image_migrates_first_and_a_newer_one_replaces_the_job() {
    let ws = workspace(&bucket("upgrade"));
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    settle(&client, "fob-north").await;
    let deployments = api::<Deployment>(&client);
    let jobs = api::<Job>(&client);
    let first = image_of(&deployments.get("fob-north").await.unwrap());
    assert!(
        migration_jobs(&client).await.is_empty(),
        "a fresh install needs no Job"
    );

    change_image(&client, "registry.example/entente-server:2").await;
    assert_eq!(
        image_of(&deployments.get("fob-north").await.unwrap()),
        first,
        "servers wait for the migration"
    );
    assert_eq!(
        condition(&status(&client, "fob-north").await, "Reconciling").reason,
        "Migrating"
    );

    // Another image while that Job runs: its Job replaces the first.
    let job = change_image(&client, "registry.example/entente-server:3").await;

    jobs.patch_status(
        &job,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [
        {"type": "Complete", "status": "True"}]}})),
    )
    .await
    .unwrap();
    reconcile(&client, "fob-north").await;
    assert_eq!(
        image_of(&deployments.get("fob-north").await.unwrap()),
        "registry.example/entente-server:3"
    );
}

#[tokio::test]
async fn a_failed_migration_leaves_the_servers_alone_and_says_why() {
    let ws = workspace(&bucket("failed"));
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    settle(&client, "fob-north").await;
    let deployments = api::<Deployment>(&client);
    let before = deployments.get("fob-north").await.unwrap();
    let job = change_image(&client, "registry.example/entente-server:9").await;
    api::<Job>(&client)
        .patch_status(
            &job,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]}})),
        )
        .await
        .unwrap();
    reconcile(&client, "fob-north").await;
    let after = deployments.get("fob-north").await.unwrap();
    assert_eq!(before.spec, after.spec, "the Deployment is untouched");
    let status = status(&client, "fob-north").await;
    let degraded = condition(&status, "Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "MigrationFailed")
    );
    assert!(
        degraded.message.contains("backoff limit"),
        "{}",
        degraded.message
    );
    assert_eq!(condition(&status, "Stalled").status, "True");
}

#[tokio::test]
async fn a_missing_external_database_secret_is_named_and_nothing_is_rolled() {
    let mut ws = workspace(&bucket("external"));
    ws.spec.database.managed = None;
    ws.spec.database.external = Some(
        serde_json::from_value(json!({
        "connectionSecret": {"name": "fob-db", "key": "uri"}}))
        .unwrap(),
    );
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    settle(&client, "fob-north").await;
    let first = status(&client, "fob-north").await;
    let stalled = condition(&first, "Stalled");
    assert_eq!(stalled.reason, "ReferenceNotFound");
    assert!(
        stalled
            .message
            .contains("Secret \"fob-db\" (spec.database.external.connectionSecret) not found"),
        "{}",
        stalled.message
    );
    assert!(!exists::<Deployment>(&client, "fob-north").await);

    // The Secret appears without the key, then with it.
    let secrets = api::<Secret>(&client);
    secrets
        .create(
            &Default::default(),
            &secret("fob-db", &[("url", "postgres://x")]),
        )
        .await
        .unwrap();
    reconcile(&client, "fob-north").await;
    let message = condition(&status(&client, "fob-north").await, "Stalled")
        .message
        .clone();
    assert!(message.contains("has no key \"uri\""), "{message}");
    secrets
        .patch(
            "fob-db",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"uri": "cG9zdGdyZXM6Ly94"}})),
        )
        .await
        .unwrap();
    reconcile(&client, "fob-north").await;
    let now = status(&client, "fob-north").await;
    assert_eq!(condition(&now, "Stalled").status, "False");
    assert_eq!(now.database.unwrap().phase.as_deref(), Some("External"));
    assert!(exists::<Deployment>(&client, "fob-north").await);
}

#[tokio::test]
async fn without_cloudnative_pg_the_workspace_is_degraded_and_says_so() {
    let ws = workspace(&bucket("nocnpg"));
    let client = cluster(
        Some(&ws),
        vec![s3_secret()],
        Options {
            cloudnative_pg: false,
        },
    )
    .await;
    settle(&client, "fob-north").await;
    let status = status(&client, "fob-north").await;
    let degraded = condition(&status, "Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "CloudNativePGMissing")
    );
    assert!(degraded.message.contains("CloudNativePG is not installed"));
    // Everything else is in place.
    assert!(exists::<Deployment>(&client, "fob-north").await);
}

/// The Workspace as the API server holds it after `kubectl delete`: with a
/// deletion timestamp, kept by the operator's finalizer. (The fake API server
/// deletes at once, ignoring finalizers, so this state is seeded.)
fn being_deleted(mut ws: Workspace) -> Workspace {
    ws.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    ws.metadata.finalizers = Some(vec![controller::FINALIZER.into()]);
    ws
}

async fn make_bucket(bucket: &str, full: bool) {
    let s3 = s3_client().await;
    entente_s3::ensure_bucket(
        &s3,
        entente_e2e::S3Server::shared().region(),
        bucket,
        Default::default(),
    )
    .await
    .unwrap();
    if full {
        s3.put_object()
            .bucket(bucket)
            .key("files/report.pdf")
            .body(b"sitrep".to_vec().into())
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_finalizer_is_added_before_anything_is_built() {
    let ws = workspace(&bucket("finalizer"));
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    reconcile(&client, "fob-north").await;
    let stored = api::<Workspace>(&client).get("fob-north").await.unwrap();
    assert_eq!(stored.finalizers(), [controller::FINALIZER.to_string()]);
}

#[tokio::test]
async fn deleting_with_retain_keeps_the_bucket_and_lets_the_workspace_go() {
    let bucket = bucket("retain");
    make_bucket(&bucket, false).await;
    let ws = being_deleted(workspace(&bucket));
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    reconcile(&client, "fob-north").await;
    assert!(
        !exists::<Workspace>(&client, "fob-north").await,
        "the finalizer is gone"
    );
    assert!(bucket_exists(&bucket).await);
}

#[tokio::test]
async fn deleting_with_delete_removes_an_empty_bucket_but_never_a_full_one() {
    for full in [false, true] {
        let bucket = bucket(if full { "full" } else { "empty" });
        make_bucket(&bucket, full).await;
        let mut ws = workspace(&bucket);
        ws.spec.object_storage.deletion_policy = entente_crds::common::DeletionPolicy::Delete;
        let client = cluster(
            Some(&being_deleted(ws)),
            vec![s3_secret()],
            Options::default(),
        )
        .await;
        reconcile(&client, "fob-north").await;
        assert!(!exists::<Workspace>(&client, "fob-north").await);
        assert_eq!(bucket_exists(&bucket).await, full, "full: {full}");
    }
}

#[tokio::test]
async fn a_database_under_delete_is_owned_so_it_goes_with_the_workspace() {
    let mut ws = workspace(&bucket("owned-db"));
    ws.spec.database.managed.as_mut().unwrap().deletion_policy =
        entente_crds::common::DeletionPolicy::Delete;
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    settle(&client, "fob-north").await;
    let cluster_object = api::<CnpgCluster>(&client)
        .get("fob-north-db")
        .await
        .unwrap();
    assert_eq!(cluster_object.owner_references()[0].kind, "Workspace");
}

mod pending_kinds {
    use super::*;
    use entente_crds::{validate::Resource as Manifest, LegalHold};

    fn hold() -> LegalHold {
        let mut hold = common::example("sovereign-m365/legal-hold.yaml", |r| match r {
            Manifest::LegalHold(hold) => Some(*hold),
            _ => None,
        });
        hold.metadata.namespace = Some(NAMESPACE.into());
        hold.spec.workspace_ref = "fob-north".into();
        hold
    }

    async fn run(client: &Client) -> entente_crds::LegalHoldStatus {
        let holds = api::<LegalHold>(client);
        let hold = holds.get("ig-inquiry-2026-014").await.unwrap();
        entente_operator::pending::reconcile(Arc::new(hold), context(client))
            .await
            .unwrap();
        holds
            .get("ig-inquiry-2026-014")
            .await
            .unwrap()
            .status
            .unwrap()
    }

    #[tokio::test]
    async fn a_kind_not_built_yet_says_so_and_checks_its_workspace() {
        let client = kube_fake_client::ClientBuilder::new()
            .with_resource::<Workspace>()
            .with_resource::<LegalHold>()
            .with_object(hold())
            .build()
            .await
            .unwrap();
        let status = run(&client).await;
        let ready = status.condition("Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "WorkspaceNotFound")
        );
        assert!(ready
            .message
            .contains("Workspace \"fob-north\" (spec.workspaceRef) not found"));

        api::<Workspace>(&client)
            .create(&Default::default(), &workspace("unused"))
            .await
            .unwrap();
        let status = run(&client).await;
        let ready = status.condition("Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "NotImplemented")
        );
        assert_eq!(status.condition("Degraded").unwrap().status, "False");
        assert_eq!(status.condition("Stalled").unwrap().status, "False");
    }
}

mod policies {
    use super::*;
    use entente_crds::{
        access_policy::PolicyMode, validate::Resource as Manifest, AccessPolicy, GuestPolicy,
    };

    fn guest_policy() -> GuestPolicy {
        let mut policy = edge_example(|r| match r {
            Manifest::GuestPolicy(p) => Some(*p),
            _ => None,
        });
        policy.metadata.namespace = Some(NAMESPACE.into());
        policy
    }

    fn access_policy(expression: &str) -> AccessPolicy {
        let mut policy = edge_example(|r| match r {
            Manifest::AccessPolicy(p) => Some(*p),
            _ => None,
        });
        policy.metadata.namespace = Some(NAMESPACE.into());
        policy.spec.expression = expression.into();
        policy
    }

    async fn rendered(client: &Client) -> RuntimeConfig {
        let runtime = api::<Secret>(client)
            .get("fob-north-runtime")
            .await
            .unwrap();
        let text = String::from_utf8(runtime.data.unwrap()["runtime.yaml"].0.clone()).unwrap();
        RuntimeConfig::parse(&text, "fob-north-runtime").unwrap()
    }

    #[tokio::test]
    async fn policies_are_rendered_into_their_workspaces_config_without_a_rollout() {
        let bucket = bucket("policies");
        let ws = workspace(&bucket);
        let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
        settle(&client, "fob-north").await;
        assert!(rendered(&client).await.access.policies.is_empty());
        let template = |d: Deployment| d.spec.unwrap().template;
        let before = template(api::<Deployment>(&client).get("fob-north").await.unwrap());

        api::<GuestPolicy>(&client)
            .create(&Default::default(), &guest_policy())
            .await
            .unwrap();
        let mut elsewhere = access_policy("user.nation == 'A'");
        elsewhere.metadata.name = Some("other-workspace".into());
        elsewhere.spec.workspace_ref = "fob-south".into();
        for policy in [access_policy("user.clearance >= 'SECRET'"), elsewhere] {
            api::<AccessPolicy>(&client)
                .create(&Default::default(), &policy)
                .await
                .unwrap();
        }
        reconcile(&client, "fob-north").await;

        let config = rendered(&client).await;
        assert_eq!(config.guests.len(), 1);
        let guests = &config.guests[0];
        assert_eq!(
            (guests.policy.as_str(), guests.account_lifetime_seconds),
            ("liaison", Some(720 * 3600))
        );
        assert_eq!(guests.domains, ["nation-b.example"]);
        assert_eq!(
            guests.invitation_lifetime_seconds,
            168 * 3600,
            "the CRD's default"
        );
        assert_eq!(
            config.access.policies.len(),
            1,
            "only this workspace's policies"
        );
        let rule = &config.access.policies[0];
        assert_eq!(
            (rule.policy.as_str(), rule.mode),
            ("intel-secret", PolicyMode::Enforce)
        );
        assert_eq!(rule.channels, ["intel"]);
        assert_eq!(config.identity.ranked_attributes["clearance"][3], "SECRET");
        // Guests and access are live sections: the pods are not rolled.
        let after = template(api::<Deployment>(&client).get("fob-north").await.unwrap());
        assert_eq!(before, after);
    }

    #[tokio::test]
    async fn an_access_policy_is_checked_with_the_servers_compiler() {
        let bucket = bucket("policy-check");
        let client = cluster(None, vec![], Options::default()).await;
        let policies = api::<AccessPolicy>(&client);
        let check = |policy: AccessPolicy| {
            let client = client.clone();
            let policies = policies.clone();
            async move {
                let name = policy.name_any();
                let stored = match policies.get_opt(&name).await.unwrap() {
                    Some(mut old) => {
                        old.spec = policy.spec;
                        policies
                            .replace(&name, &Default::default(), &old)
                            .await
                            .unwrap()
                    }
                    None => policies.create(&Default::default(), &policy).await.unwrap(),
                };
                entente_operator::policies::reconcile_access(Arc::new(stored), context(&client))
                    .await
                    .unwrap();
                let status = policies.get(&name).await.unwrap().status.unwrap();
                let ready = status.condition("Ready").unwrap().clone();
                let degraded = status.condition("Degraded").unwrap().clone();
                (ready, degraded)
            }
        };
        let (ready, _) = check(access_policy("user.clearance >= 'SECRET'")).await;
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "WorkspaceNotFound")
        );

        api::<Workspace>(&client)
            .create(&Default::default(), &workspace(&bucket))
            .await
            .unwrap();
        let (ready, degraded) = check(access_policy("user.clearance >= 'SECRET'")).await;
        assert_eq!(ready.status, "True", "{}", ready.message);
        assert_eq!(degraded.status, "False");

        // A level the Workspace does not rank, and a syntax error: Degraded with the compiler's words.
        let (ready, degraded) = check(access_policy("user.clearance >= 'SECERT'")).await;
        assert_eq!(
            (ready.status.as_str(), degraded.status.as_str()),
            ("False", "True")
        );
        assert_eq!(degraded.reason, "InvalidExpression");
        assert!(
            degraded
                .message
                .contains("\"SECERT\" is not a level of clearance"),
            "{}",
            degraded.message
        );
        let (_, degraded) = check(access_policy("user.nation in ['A'")).await;
        assert!(
            degraded
                .message
                .starts_with("spec.expression: syntax error"),
            "{}",
            degraded.message
        );
    }
}

#[tokio::test]
async fn object_lock_in_the_spec_gives_a_locked_versioned_bucket() {
    let bucket = bucket("locked");
    let mut ws = workspace(&bucket);
    ws.spec.object_storage.object_lock = true;
    let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
    settle(&client, "fob-north").await;
    assert!(
        status(&client, "fob-north")
            .await
            .bucket
            .unwrap()
            .object_lock
    );
    let lock = s3_client()
        .await
        .get_object_lock_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        lock.object_lock_configuration()
            .and_then(|c| c.object_lock_enabled()),
        Some(&aws_sdk_s3::types::ObjectLockEnabled::Enabled)
    );
}

#[tokio::test]
async fn refused_object_store_credentials_stall_with_the_reason() {
    let ws = workspace(&bucket("denied"));
    let wrong = secret(
        "edge-s3",
        &[
            (
                "AWS_ACCESS_KEY_ID",
                entente_e2e::S3Server::shared().access_key_id(),
            ),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ],
    );
    let client = cluster(Some(&ws), vec![wrong], Options::default()).await;
    settle(&client, "fob-north").await;
    let status = status(&client, "fob-north").await;
    let stalled = condition(&status, "Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "ObjectStoreDenied")
    );
    assert!(!exists::<Deployment>(&client, "fob-north").await);
}

mod partners {
    use super::*;
    use entente_crds::{
        partner_connection::ShareMode, validate::Resource as Manifest, PartnerConnection,
        PartnerConnectionStatus,
    };
    use entente_operator::admin::Addresses;

    fn partner() -> PartnerConnection {
        let mut pc = edge_example(|r| match r {
            Manifest::PartnerConnection(pc) => Some(*pc),
            _ => None,
        });
        pc.metadata.namespace = Some(NAMESPACE.into());
        pc
    }

    /// A CA certificate and its key, as PEM.
    fn ca() -> certs::Pair {
        let names = ["hq.nation-a.example".to_string()];
        certs::ensure(
            None,
            None,
            &certs::Wanted {
                names: &names,
                organisation: "Nation A Army",
                lifetime_seconds: 86_400,
                renew_before_seconds: 3_600,
            },
            chrono_now(),
        )
        .unwrap()
        .ca
    }

    fn chrono_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    async fn rendered(client: &Client) -> (RuntimeConfig, Secret) {
        let runtime = api::<Secret>(client)
            .get("fob-north-runtime")
            .await
            .unwrap();
        let text =
            String::from_utf8(runtime.data.as_ref().unwrap()["runtime.yaml"].0.clone()).unwrap();
        (
            RuntimeConfig::parse(&text, "fob-north-runtime").unwrap(),
            runtime,
        )
    }

    /// Reconciles the PartnerConnection `name` with no server answering.
    async fn judge(client: &Client, name: &str) -> PartnerConnectionStatus {
        let pcs = api::<PartnerConnection>(client);
        let pc = pcs.get(name).await.unwrap();
        let ctx = Arc::new(
            Arc::into_inner(context(client))
                .unwrap()
                .with_admin(Addresses::Fixed("http://127.0.0.1:1".into())),
        );
        entente_operator::partners::reconcile(Arc::new(pc), ctx)
            .await
            .unwrap();
        pcs.get(name).await.unwrap().status.unwrap()
    }

    async fn put_ca(client: &Client, value: &str) {
        let secrets = api::<Secret>(client);
        let wanted = secret("hq-federation-ca", &[("ca.crt", value)]);
        match secrets.get_opt("hq-federation-ca").await.unwrap() {
            Some(mut old) => {
                old.data = wanted.data;
                secrets
                    .replace("hq-federation-ca", &Default::default(), &old)
                    .await
                    .unwrap();
            }
            None => {
                secrets.create(&Default::default(), &wanted).await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_partner_is_rendered_with_its_ca_beside_the_config_without_a_rollout() {
        let bucket = bucket("partners");
        let ws = workspace(&bucket);
        let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
        settle(&client, "fob-north").await;
        assert!(rendered(&client).await.0.federation.partners.is_empty());
        let template = |d: Deployment| d.spec.unwrap().template;
        let before = template(api::<Deployment>(&client).get("fob-north").await.unwrap());

        let ca = ca();
        put_ca(&client, &ca.cert).await;
        api::<PartnerConnection>(&client)
            .create(&Default::default(), &partner())
            .await
            .unwrap();
        reconcile(&client, "fob-north").await;

        let (config, runtime) = rendered(&client).await;
        assert_eq!(config.federation.partners.len(), 1);
        let hq = &config.federation.partners[0];
        assert_eq!(
            (
                hq.workspace_id.as_str(),
                hq.organisation.as_str(),
                hq.identity.as_str()
            ),
            ("hq", "Nation A Army", "hq.nation-a.example")
        );
        assert_eq!(
            hq.ca_file,
            std::path::Path::new("/etc/entente/runtime/partner-hq-ca.crt"),
            "beside the config, in the mounted runtime Secret"
        );
        assert_eq!(
            runtime.data.as_ref().unwrap()["partner-hq-ca.crt"].0,
            ca.cert.as_bytes(),
            "the partner's CA bundle, copied"
        );
        let shares: Vec<(&str, &str, ShareMode, bool, bool, bool)> = hq
            .channels
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.remote_name.as_str(),
                    c.mode,
                    c.post,
                    c.react,
                    c.upload_files,
                )
            })
            .collect();
        assert_eq!(
            shares,
            [
                ("sitreps", "sitreps", ShareMode::ReadWrite, true, true, true),
                (
                    "logistics",
                    "logistics",
                    ShareMode::ReadWrite,
                    true,
                    true,
                    false
                ),
            ]
        );
        assert_eq!(hq.sync.bandwidth_bytes_per_second, Some(16 * 1024));
        assert_eq!(hq.sync.max_file_bytes, 2 * 1024 * 1024);
        assert_eq!(hq.sync.max_queued_bytes, 256 * 1024 * 1024);
        assert_eq!(
            (hq.sync.max_queued_events, hq.sync.keepalive_seconds),
            (200_000, 120)
        );
        // Federation partners are a live section: the pods are not rolled.
        let after = template(api::<Deployment>(&client).get("fob-north").await.unwrap());
        assert_eq!(before, after);

        // Its own status: trusted, rendered; no server to ask, so no figures.
        let status = judge(&client, "fob-north-to-hq").await;
        let ready = status.condition("Ready").unwrap();
        assert_eq!(ready.status, "True", "{}", ready.message);
        assert!(
            ready
                .message
                .contains("trusting 1 CA certificate(s) from Secret \"hq-federation-ca\""),
            "{}",
            ready.message
        );
        assert!(
            ready.message.contains("figures not updated: admin API"),
            "{}",
            ready.message
        );
        assert_eq!(status.queued_events, None);
    }

    #[tokio::test]
    async fn a_partner_that_cannot_be_trusted_is_stalled_named_and_left_out() {
        let bucket = bucket("partners-bad");
        let ws = workspace(&bucket);
        let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
        settle(&client, "fob-north").await;
        let pcs = api::<PartnerConnection>(&client);
        pcs.create(&Default::default(), &partner()).await.unwrap();
        let stalled = async |reason: &str, words: &str| {
            let status = judge(&client, "fob-north-to-hq").await;
            let stalled = status.condition("Stalled").unwrap();
            assert_eq!(
                (stalled.status.as_str(), stalled.reason.as_str()),
                ("True", reason),
                "{}",
                stalled.message
            );
            assert!(stalled.message.contains(words), "{}", stalled.message);
            reconcile(&client, "fob-north").await;
            assert!(
                rendered(&client).await.0.federation.partners.is_empty(),
                "left out of the config: {words}"
            );
        };
        stalled(
            "CABundleInvalid",
            "Secret \"hq-federation-ca\" (spec.partner.caBundle) not found in namespace \"edge\"",
        )
        .await;
        let ca = ca();
        put_ca(&client, &ca.key).await;
        stalled(
            "CABundleInvalid",
            "holds a \"PRIVATE KEY\" block that is not an X.509 certificate",
        )
        .await;
        put_ca(&client, "not a certificate").await;
        stalled("CABundleInvalid", "holds no PEM certificate").await;
        put_ca(&client, &ca.cert).await;

        // Two shares that are one channel on the partner's side.
        let mut pc = pcs.get("fob-north-to-hq").await.unwrap();
        pc.spec.channels[1].remote_name = Some("sitreps".into());
        pcs.replace("fob-north-to-hq", &Default::default(), &pc)
            .await
            .unwrap();
        stalled("InvalidSpec", "spec.channels[1]: \"logistics\" (the partner's \"sitreps\") overlaps the share of \"sitreps\"").await;
        pc = pcs.get("fob-north-to-hq").await.unwrap();
        pc.spec.channels[1].remote_name = None;
        pc.spec.partner.workspace_id = "fob-north".into();
        pcs.replace("fob-north-to-hq", &Default::default(), &pc)
            .await
            .unwrap();
        stalled(
            "Conflict",
            "spec.partner.workspaceId \"fob-north\" is this workspace's own id",
        )
        .await;

        // Fixed; then a second connection to the same partner is refused,
        // and the first stays rendered.
        pc = pcs.get("fob-north-to-hq").await.unwrap();
        pc.spec.partner.workspace_id = "hq".into();
        pcs.replace("fob-north-to-hq", &Default::default(), &pc)
            .await
            .unwrap();
        let status = judge(&client, "fob-north-to-hq").await;
        assert_eq!(status.condition("Ready").unwrap().status, "True");
        let mut second = partner();
        second.metadata.name = Some("fob-north-to-hq-again".into());
        pcs.create(&Default::default(), &second).await.unwrap();
        let status = judge(&client, "fob-north-to-hq-again").await;
        let stalled = status.condition("Stalled").unwrap();
        assert_eq!(stalled.reason, "Conflict");
        assert!(
            stalled.message.contains(
                "PartnerConnection \"fob-north-to-hq\" already connects this workspace to \"hq\""
            ),
            "{}",
            stalled.message
        );
        reconcile(&client, "fob-north").await;
        let partners = rendered(&client).await.0.federation.partners;
        assert_eq!(partners.len(), 1, "the older one only");
    }
}

mod calls_cluster {
    use super::*;
    use entente_crds::{
        config::{MediaConfig, SecretSource, UdpPorts},
        validate::Resource as Manifest,
        workspace::CallsFeature,
        CallsCluster, CallsClusterStatus,
    };

    fn calls() -> CallsCluster {
        let mut cc = common::example("mission-partner/calls.yaml", |r| match r {
            Manifest::CallsCluster(cc) => Some(*cc),
            _ => None,
        });
        cc.metadata.namespace = Some(NAMESPACE.into());
        cc
    }

    async fn judge(client: &Client) -> CallsClusterStatus {
        let ccs = api::<CallsCluster>(client);
        let cc = ccs.get("calls").await.unwrap();
        entente_operator::calls::reconcile(Arc::new(cc), context(client))
            .await
            .unwrap();
        ccs.get("calls").await.unwrap().status.unwrap()
    }

    fn data(secret: &Secret, key: &str) -> Vec<u8> {
        secret.data.as_ref().unwrap()[key].0.clone()
    }

    #[tokio::test]
    async fn a_calls_cluster_gets_its_nodes_a_kept_key_and_its_workspaces_the_calls_section() {
        let bucket = bucket("calls");
        let mut ws = workspace(&bucket);
        ws.spec.features.calls = Some(CallsFeature {
            calls_cluster_ref: "calls".into(),
            recording: false,
        });
        let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
        api::<CallsCluster>(&client)
            .create(&Default::default(), &calls())
            .await
            .unwrap();

        // Two nodes, each a Deployment of one pod with its own Services.
        let status = judge(&client).await;
        assert_eq!((status.nodes, status.ready_nodes), (Some(2), Some(0)));
        let ready = status.condition("Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "NodesStarting")
        );
        assert!(
            ready.message.contains("not built yet: the offloader"),
            "what is not built is said: {}",
            ready.message
        );
        for node in ["calls-sfu-0", "calls-sfu-1"] {
            let deployment = api::<Deployment>(&client).get(node).await.unwrap();
            let pod = deployment.spec.unwrap().template.spec.unwrap();
            assert_eq!(pod.automount_service_account_token, Some(false));
            let container = &pod.containers[0];
            assert_eq!(
                container.args.as_ref().unwrap(),
                &["--config", "/etc/entente/media/media.yaml"]
            );
            let signalling = api::<Service>(&client).get(node).await.unwrap();
            assert_eq!(signalling.spec.unwrap().ports.unwrap()[0].port, 7880);
            let media = api::<Service>(&client)
                .get(&format!("{node}-media"))
                .await
                .unwrap()
                .spec
                .unwrap();
            assert_eq!(media.type_.as_deref(), Some("LoadBalancer"));
            let ports: Vec<(i32, Option<String>)> = media
                .ports
                .unwrap()
                .into_iter()
                .map(|p| (p.port, p.protocol))
                .collect();
            assert_eq!(
                ports,
                [(8443, Some("UDP".into())), (8443, Some("TCP".into()))],
                "media, and the TCP fallback"
            );
        }
        let config = api::<Secret>(&client)
            .get("calls-sfu-config")
            .await
            .unwrap();
        let config = MediaConfig::parse(
            &String::from_utf8(data(&config, "media.yaml")).unwrap(),
            "calls-sfu-config",
        )
        .unwrap();
        let sfu = config.sfu.unwrap();
        assert_eq!(sfu.udp, UdpPorts::Mux(8443));
        assert_eq!(sfu.advertised_addresses, ["198.51.100.20"]);
        assert_eq!(
            (sfu.max_participants_per_room, sfu.tcp_port),
            (50, Some(8443))
        );
        assert_eq!(
            config.join_token_key,
            SecretSource::File("/etc/entente/media/key".into())
        );

        // The key is made once and kept.
        let key = data(
            &api::<Secret>(&client)
                .get("calls-join-token")
                .await
                .unwrap(),
            "key",
        );
        assert_eq!(key.len(), 48);
        for node in ["calls-sfu-0", "calls-sfu-1"] {
            deployment_is_up(&client, node, 1).await;
        }
        let status = judge(&client).await;
        assert_eq!(status.ready_nodes, Some(2));
        assert_eq!(status.condition("Ready").unwrap().status, "True");
        let again = data(
            &api::<Secret>(&client)
                .get("calls-join-token")
                .await
                .unwrap(),
            "key",
        );
        assert_eq!(key, again, "the key survives reconciles");

        // The workspace that uses it: its nodes, and the key beside its config.
        reconcile(&client, "fob-north").await;
        let runtime = api::<Secret>(&client)
            .get("fob-north-runtime")
            .await
            .unwrap();
        let text = String::from_utf8(data(&runtime, "runtime.yaml")).unwrap();
        let config = RuntimeConfig::parse(&text, "fob-north-runtime").unwrap();
        let calls = config.calls.expect("a calls section");
        assert_eq!(
            calls.sfu_nodes,
            [
                "http://calls-sfu-0.edge.svc:7880",
                "http://calls-sfu-1.edge.svc:7880"
            ]
        );
        assert_eq!(calls.join_token_ttl_seconds, 60);
        assert_eq!(
            calls.join_token_key,
            SecretSource::File("/etc/entente/runtime/calls-join-token.key".into())
        );
        assert_eq!(data(&runtime, "calls-join-token.key"), key);
        assert!(
            !text.contains(std::str::from_utf8(&key).unwrap()),
            "the key is not in the config"
        );
    }

    #[tokio::test]
    async fn host_network_mode_runs_a_pod_per_node_and_workspaces_reach_them_by_address() {
        use k8s_openapi::api::{apps::v1::DaemonSet, core::v1::Pod};
        let bucket = bucket("calls-host");
        let mut ws = workspace(&bucket);
        ws.spec.features.calls = Some(CallsFeature {
            calls_cluster_ref: "calls".into(),
            recording: false,
        });
        let client = kube_fake_client::ClientBuilder::new()
            .with_resource::<Workspace>()
            .with_resource::<entente_crds::PartnerConnection>()
            .with_resource::<entente_crds::GuestPolicy>()
            .with_resource::<entente_crds::AccessPolicy>()
            .with_resource::<CallsCluster>()
            .with_resource::<entente_crds::LanguageModel>()
            .with_status_subresource::<Deployment>()
            .with_status_subresource::<DaemonSet>()
            .with_status_subresource::<Job>()
            .with_object(s3_secret())
            .with_object(ws.clone())
            .build()
            .await
            .unwrap();
        let mut cc = calls();
        cc.spec.sfu.mode = entente_crds::calls_cluster::SfuMode::HostNetwork;
        cc.spec.sfu.replicas = None;
        api::<CallsCluster>(&client)
            .create(&Default::default(), &cc)
            .await
            .unwrap();
        let status = judge(&client).await;
        assert_eq!(status.ready_nodes, Some(0));
        assert_eq!(status.token_secret.as_deref(), Some("calls-join-token"));
        let daemon_set = api::<DaemonSet>(&client).get("calls-sfu").await.unwrap();
        let pod = daemon_set.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.host_network, Some(true));
        assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
        assert!(!exists::<Deployment>(&client, "calls-sfu-0").await);
        assert!(
            !exists::<Service>(&client, "calls-sfu-0-media").await,
            "no Service in the way"
        );

        // The DaemonSet's pods come up on two nodes.
        api::<DaemonSet>(&client)
            .patch_status(
                "calls-sfu",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                    "desiredNumberScheduled": 2, "numberReady": 2,
                    "currentNumberScheduled": 2, "numberMisscheduled": 0}})),
            )
            .await
            .unwrap();
        let labels = daemon_set.metadata.labels.clone().unwrap();
        for (name, ip, ready) in [
            ("calls-sfu-a", "10.0.0.11", "True"),
            ("calls-sfu-b", "10.0.0.12", "True"),
            ("calls-sfu-c", "10.0.0.13", "False"),
        ] {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                "spec": {"containers": [{"name": "sfu", "image": "x"}]},
                "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": ready}]},
            }))
            .unwrap();
            api::<Pod>(&client)
                .create(&Default::default(), &pod)
                .await
                .unwrap();
        }
        let status = judge(&client).await;
        assert_eq!((status.nodes, status.ready_nodes), (Some(2), Some(2)));
        assert_eq!(status.condition("Ready").unwrap().status, "True");

        reconcile(&client, "fob-north").await;
        let runtime = api::<Secret>(&client)
            .get("fob-north-runtime")
            .await
            .unwrap();
        let text = String::from_utf8(data(&runtime, "runtime.yaml")).unwrap();
        let config = RuntimeConfig::parse(&text, "fob-north-runtime").unwrap();
        assert_eq!(
            config.calls.unwrap().sfu_nodes,
            ["http://10.0.0.11:7880", "http://10.0.0.12:7880"],
            "the ready pods' node addresses"
        );
    }
}

/// The identity provider, started from `e2e/node` (npm's oidc-provider)
/// on `port`; killed when dropped.
struct Provider(std::process::Child);

impl Provider {
    fn start(port: u16) -> Provider {
        let node = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/node");
        let key = std::process::Command::new("node")
            .arg(node.join("key.mjs"))
            .output()
            .unwrap();
        let config =
            std::env::temp_dir().join(format!("entente-idp-{}-{port}.json", std::process::id()));
        std::fs::write(
            &config,
            format!(
                r#"{{"port": {port}, "clientId": "c", "clientSecret": "s", "redirectUris": ["https://chat.example.org/cb"], "keys": [{}], "users": {{}}}}"#,
                String::from_utf8(key.stdout).unwrap().trim()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("node")
            .arg(node.join("oidc.mjs"))
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !entente_e2e::port_is_open(port) {
            assert!(
                std::time::Instant::now() < deadline,
                "the provider did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Provider(child)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_identity_provider_is_read_as_the_servers_will_and_a_wrong_one_is_named() {
    let bucket = bucket("identity");
    let mut ws = workspace(&bucket);
    let port = entente_e2e::free_port();
    ws.spec.identity.oidc = Some(
        serde_json::from_value(serde_json::json!({
            "issuerUrl": format!("http://127.0.0.1:{port}"),
            "clientId": "c",
            "clientSecret": {"name": "edge-oidc", "key": "secret"},
        }))
        .unwrap(),
    );
    let client = cluster(
        Some(&ws),
        vec![s3_secret(), secret("edge-oidc", &[("secret", "s")])],
        Options::default(),
    )
    .await;
    settle(&client, "fob-north").await;
    let down = status(&client, "fob-north").await;
    let reachable = condition(&down, "IdentityProviderReachable");
    assert_eq!(reachable.status, "False");
    assert_eq!(reachable.reason, "Unreachable");
    assert!(
        reachable.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        reachable.message
    );

    let _provider = Provider::start(port);
    reconcile(&client, "fob-north").await;
    let up = status(&client, "fob-north").await;
    assert_eq!(condition(&up, "IdentityProviderReachable").status, "True");

    // An issuer URL that is not the provider's own name for itself.
    patch_spec(
        &client,
        "fob-north",
        serde_json::json!({"identity": {"oidc": {"issuerUrl": format!("http://localhost:{port}")}}}),
    )
    .await;
    reconcile(&client, "fob-north").await;
    let wrong = status(&client, "fob-north").await;
    let reachable = condition(&wrong, "IdentityProviderReachable");
    assert_eq!(reachable.reason, "IssuerMismatch", "{}", reachable.message);
}

mod language_model {
    use super::*;
    use entente_crds::{
        config::SecretSource,
        validate::Resource as Manifest,
        workspace::{AgentSpec, AiFeature},
        LanguageModel, LanguageModelStatus,
    };
    use entente_e2e::{model, ModelServer};

    fn sovereign() -> LanguageModel {
        let mut lm = common::example("mission-partner/llm.yaml", |r| match r {
            Manifest::LanguageModel(lm) => Some(*lm),
            _ => None,
        });
        lm.metadata.namespace = Some(NAMESPACE.into());
        lm
    }

    async fn judge(client: &Client, name: &str) -> LanguageModelStatus {
        let models = api::<LanguageModel>(client);
        let lm = models.get(name).await.unwrap();
        entente_operator::models::reconcile(Arc::new(lm), context(client))
            .await
            .unwrap();
        models.get(name).await.unwrap().status.unwrap()
    }

    fn ready(status: &LanguageModelStatus) -> (String, String, String) {
        let ready = status.condition("Ready").unwrap();
        (
            ready.status.clone(),
            ready.reason.clone(),
            ready.message.clone(),
        )
    }

    #[tokio::test]
    async fn a_self_hosted_model_runs_and_its_workspaces_get_its_endpoint_key_and_egress() {
        let bucket = bucket("model");
        let mut ws = workspace(&bucket);
        ws.spec.network.policies = true;
        ws.spec.features.ai = Some(AiFeature {
            language_model_ref: "sovereign-llm".into(),
            summaries: true,
            agents: vec![AgentSpec {
                name: "assistant".into(),
                display_name: Some("Assistant".into()),
                instructions: "Help.".into(),
                model: None,
                channels: vec![],
                users: vec![],
                tools: true,
            }],
            allow_partner_users: false,
            max_concurrent_requests: 4,
        });
        let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
        api::<LanguageModel>(&client)
            .create(&Default::default(), &sovereign())
            .await
            .unwrap();

        let status = judge(&client, "sovereign-llm").await;
        assert_eq!(
            status.endpoint.as_deref(),
            Some("http://sovereign-llm.edge.svc:8000")
        );
        let (state, reason, _) = ready(&status);
        assert_eq!((state.as_str(), reason.as_str()), ("False", "Starting"));
        let deployment = api::<Deployment>(&client)
            .get("sovereign-llm-model")
            .await
            .unwrap();
        let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("registry.mission.example/vllm/vllm-openai:v0.8.5")
        );
        assert!(exists::<Service>(&client, "sovereign-llm").await);
        let key = api::<Secret>(&client)
            .get("sovereign-llm-api-key")
            .await
            .unwrap()
            .data
            .unwrap()["api-key"]
            .0
            .clone();
        assert_eq!(key.len(), 48);

        // Up, but not reachable from here: said, with where it was asked.
        deployment_is_up(&client, "sovereign-llm-model", 1).await;
        let status = judge(&client, "sovereign-llm").await;
        assert_eq!(status.ready_replicas, Some(1));
        let (state, reason, message) = ready(&status);
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "EndpointUnreachable")
        );
        assert!(
            message.contains("http://sovereign-llm.edge.svc:8000/v1/models"),
            "{message}"
        );
        let again = api::<Secret>(&client)
            .get("sovereign-llm-api-key")
            .await
            .unwrap()
            .data
            .unwrap()["api-key"]
            .0
            .clone();
        assert_eq!(key, again, "the key is made once");

        // The workspace: the model in its config, the key beside it, and
        // a way out to the model server and nowhere else of it.
        reconcile(&client, "fob-north").await;
        let runtime = api::<Secret>(&client)
            .get("fob-north-runtime")
            .await
            .unwrap();
        let data = runtime.data.unwrap();
        let text = String::from_utf8(data["runtime.yaml"].0.clone()).unwrap();
        let config = RuntimeConfig::parse(&text, "fob-north-runtime").unwrap();
        let ai = config.ai.expect("an ai section");
        assert_eq!(ai.base_url, "http://sovereign-llm.edge.svc:8000");
        assert_eq!(ai.chat_model, "mistral-small-instruct");
        assert_eq!(
            ai.api_key,
            Some(SecretSource::File("/etc/entente/runtime/ai-api-key".into()))
        );
        assert_eq!(ai.agents[0].name, "assistant");
        assert_eq!(data["ai-api-key"].0, key);
        assert!(!text.contains(std::str::from_utf8(&key).unwrap()));
        let policy = api::<NetworkPolicy>(&client)
            .get("fob-north-allow")
            .await
            .unwrap();
        let egress = policy.spec.unwrap().egress.unwrap();
        let to_model = egress
            .iter()
            .find(|rule| {
                rule.to.iter().flatten().any(|peer| {
                    peer.pod_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        .is_some_and(|l| {
                            l.get("app.kubernetes.io/component").map(String::as_str)
                                == Some("model")
                        })
                })
            })
            .expect("an egress rule to the model server");
        let ports: Vec<i32> = to_model
            .ports
            .iter()
            .flatten()
            .filter_map(|p| match p.port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => Some(n),
                _ => None,
            })
            .collect();
        assert_eq!(ports, [8000]);
    }

    #[tokio::test]
    async fn an_external_endpoint_is_asked_what_it_serves_with_its_key() {
        let server = ModelServer::shared();
        let external = |chat: &str| -> LanguageModel {
            serde_json::from_value(json!({
                "apiVersion": "entente.dev/v1alpha1",
                "kind": "LanguageModel",
                "metadata": {"name": "local", "namespace": NAMESPACE},
                "spec": {"chatModel": chat, "external": {
                    "url": server.endpoint(),
                    "apiKeySecret": {"name": "model-key", "key": "key"},
                }},
            }))
            .unwrap()
        };
        let client = cluster(None, vec![], Options::default()).await;
        let models = api::<LanguageModel>(&client);
        models
            .create(&Default::default(), &external(model::MODEL_NAME))
            .await
            .unwrap();

        let status = judge(&client, "local").await;
        let (state, reason, message) = ready(&status);
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "SecretNotFound"),
            "{message}"
        );

        api::<Secret>(&client)
            .create(
                &Default::default(),
                &secret("model-key", &[("key", "wrong")]),
            )
            .await
            .unwrap();
        let status = judge(&client, "local").await;
        let (_, reason, message) = ready(&status);
        assert_eq!(reason, "EndpointUnreachable");
        assert!(message.contains("401"), "a wrong key is told: {message}");

        api::<Secret>(&client)
            .replace(
                "model-key",
                &Default::default(),
                &secret("model-key", &[("key", model::API_KEY)]),
            )
            .await
            .unwrap();
        let status = judge(&client, "local").await;
        assert_eq!(status.endpoint, Some(server.endpoint()));
        assert_eq!(status.models, [model::MODEL_NAME]);
        assert!(status.ready_replicas.is_none());
        let (state, _, message) = ready(&status);
        assert_eq!(state, "True", "{message}");
        assert!(
            !exists::<Deployment>(&client, "local-model").await,
            "nothing runs for an external endpoint"
        );

        models
            .replace("local", &Default::default(), &{
                let mut lm = external("gpt-9");
                lm.metadata.resource_version =
                    models.get("local").await.unwrap().metadata.resource_version;
                lm
            })
            .await
            .unwrap();
        let status = judge(&client, "local").await;
        let (state, reason, message) = ready(&status);
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "ModelNotServed")
        );
        assert!(
            message.contains("smollm2"),
            "what it does serve is said: {message}"
        );
    }
}

mod translation {
    use super::*;
    use entente_crds::{
        config::{SecretSource, TranslationProvider},
        workspace::{
            ApertiumSpec, LibreTranslateSpec, TranslationFeature, TranslationProviderSpec,
        },
    };

    fn feature(provider: TranslationProviderSpec) -> TranslationFeature {
        TranslationFeature {
            language_model_ref: None,
            languages: vec!["en".into(), "es".into()],
            default_language: None,
            provider: Some(provider),
            concurrency: 4,
        }
    }

    #[tokio::test]
    async fn a_libretranslate_provider_is_rendered_with_its_key_beside_the_config() {
        let bucket = bucket("translate");
        let mut ws = workspace(&bucket);
        ws.spec.features.translation = Some(feature(TranslationProviderSpec {
            apertium: None,
            libre_translate: Some(LibreTranslateSpec {
                url: "https://translate.agency.example".into(),
                api_key_secret: Some(entente_crds::common::SecretKeyRef {
                    name: "translate-key".into(),
                    key: "key".into(),
                }),
            }),
        }));
        let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
        settle(&client, "fob-north").await;
        let first = status(&client, "fob-north").await;
        let stalled = condition(&first, "Stalled");
        assert!(
            stalled.message.contains("Secret \"translate-key\" with key \"key\" (spec.features.translation.provider.libreTranslate.apiKeySecret) not found"),
            "{}",
            stalled.message
        );

        api::<Secret>(&client)
            .create(
                &Default::default(),
                &secret("translate-key", &[("key", "lt-secret")]),
            )
            .await
            .unwrap();
        settle(&client, "fob-north").await;
        let runtime = api::<Secret>(&client)
            .get("fob-north-runtime")
            .await
            .unwrap();
        let data = runtime.data.unwrap();
        let text = String::from_utf8(data["runtime.yaml"].0.clone()).unwrap();
        let translation = RuntimeConfig::parse(&text, "runtime")
            .unwrap()
            .translation
            .expect("a translation section");
        assert_eq!(
            translation.provider,
            TranslationProvider::LibreTranslate {
                url: "https://translate.agency.example".into(),
                api_key: Some(SecretSource::File(
                    "/etc/entente/runtime/translation-api-key".into()
                )),
            }
        );
        assert_eq!(translation.default_language, "en");
        assert_eq!(data["translation-api-key"].0, b"lt-secret");
        assert!(!text.contains("lt-secret"));
    }

    #[tokio::test]
    async fn apertium_without_a_url_or_a_pod_is_said_to_need_one() {
        let bucket = bucket("apertium");
        let mut ws = workspace(&bucket);
        ws.spec.features.translation = Some(feature(TranslationProviderSpec {
            apertium: Some(ApertiumSpec {
                url: None,
                pod: None,
                replicas: 1,
            }),
            libre_translate: None,
        }));
        let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
        settle(&client, "fob-north").await;
        let first = status(&client, "fob-north").await;
        let stalled = condition(&first, "Stalled");
        assert!(
            stalled
                .message
                .contains("give the url of Apertium's service, or a pod (with its image) for the operator to run"),
            "{}",
            stalled.message
        );
    }

    /// With a `pod`, the operator runs Apertium's service beside the
    /// workspace, reachable by its servers alone, and the servers are
    /// given its address; without translation, it is gone.
    #[tokio::test]
    async fn apertium_with_a_pod_runs_beside_the_workspace_for_its_servers_alone() {
        let bucket = bucket("apertium-pod");
        let mut ws = workspace(&bucket);
        ws.spec.network.policies = true;
        ws.spec.features.translation = Some(feature(TranslationProviderSpec {
            apertium: Some(ApertiumSpec {
                url: None,
                pod: Some(entente_crds::common::PodSettings {
                    image: Some("registry.example/apertium/apy:eng-spa".into()),
                    ..Default::default()
                }),
                replicas: 2,
            }),
            libre_translate: None,
        }));
        let client = cluster(Some(&ws), vec![s3_secret()], Options::default()).await;
        settle(&client, "fob-north").await;
        let status = status(&client, "fob-north").await;
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.type_ != "Stalled" || c.status == "False"),
            "{:?}",
            status.conditions
        );

        let deployment = api::<Deployment>(&client)
            .get("fob-north-apertium")
            .await
            .unwrap();
        let spec = deployment.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        let pod = spec.template.spec.unwrap();
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("registry.example/apertium/apy:eng-spa")
        );
        assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 2737);
        assert_eq!(
            container
                .security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        let service = api::<Service>(&client)
            .get("fob-north-apertium")
            .await
            .unwrap();
        assert_eq!(service.spec.unwrap().ports.unwrap()[0].port, 2737);

        // Only the workspace's servers reach it; it reaches nothing.
        let fence = api::<NetworkPolicy>(&client)
            .get("fob-north-apertium")
            .await
            .unwrap()
            .spec
            .unwrap();
        assert_eq!(fence.egress, Some(Vec::new()));
        let from = fence.ingress.unwrap()[0].from.clone().unwrap();
        let labels = from[0].pod_selector.clone().unwrap().match_labels.unwrap();
        assert_eq!(labels["app.kubernetes.io/component"], "server");
        assert_eq!(labels["app.kubernetes.io/instance"], "fob-north");
        let allow = api::<NetworkPolicy>(&client)
            .get("fob-north-allow")
            .await
            .unwrap()
            .spec
            .unwrap();
        assert!(
            allow.egress.unwrap().iter().any(|rule| {
                rule.ports.as_ref().is_some_and(|p| {
                    p[0].port
                        == Some(
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2737),
                        )
                }) && rule.to.as_ref().is_some_and(|to| {
                    to[0].pod_selector.as_ref().is_some_and(|s| {
                        s.match_labels.as_ref().unwrap()["app.kubernetes.io/component"]
                            == "translation"
                    })
                })
            }),
            "the servers may reach it"
        );

        // The servers are given its address.
        let runtime = api::<Secret>(&client)
            .get("fob-north-runtime")
            .await
            .unwrap();
        let text = String::from_utf8(runtime.data.unwrap()["runtime.yaml"].0.clone()).unwrap();
        let translation = RuntimeConfig::parse(&text, "runtime")
            .unwrap()
            .translation
            .expect("a translation section");
        assert_eq!(
            translation.provider,
            TranslationProvider::Apertium {
                url: format!(
                    "http://fob-north-apertium.{}.svc:2737",
                    deployment.metadata.namespace.unwrap()
                ),
            }
        );

        // Translation off: the service goes.
        let workspaces = api::<Workspace>(&client);
        let mut current = workspaces.get("fob-north").await.unwrap();
        current.spec.features.translation = None;
        workspaces
            .replace("fob-north", &Default::default(), &current)
            .await
            .unwrap();
        settle(&client, "fob-north").await;
        assert!(api::<Deployment>(&client)
            .get_opt("fob-north-apertium")
            .await
            .unwrap()
            .is_none());
        assert!(api::<Service>(&client)
            .get_opt("fob-north-apertium")
            .await
            .unwrap()
            .is_none());
    }
}
