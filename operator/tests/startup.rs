//! Start-up checks and leader election against the in-memory API server.

use std::time::Duration;

use entente_operator::{
    leader::LeaseLock,
    reconcile::Scope,
    startup::{check_permissions, checks, StartupError},
};
use kube_fake_client::{interceptor, ClientBuilder};

/// An API server that answers SelfSubjectAccessReviews, allowing everything
/// except `denied` (verb, resource).
async fn authorizer(denied: &'static [(&'static str, &'static str)]) -> kube::Client {
    ClientBuilder::new()
        .with_interceptor_funcs(interceptor::Funcs::new().create(move |ctx| {
            if ctx.object["kind"] != "SelfSubjectAccessReview" {
                return Ok(None);
            }
            let attributes = &ctx.object["spec"]["resourceAttributes"];
            let allowed = !denied.iter().any(|(verb, resource)| {
                attributes["verb"] == *verb && attributes["resource"] == *resource
            });
            let mut answer = ctx.object.clone();
            answer["status"] = serde_json::json!({ "allowed": allowed });
            Ok(Some(answer))
        }))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_missing_permission_is_named_before_anything_starts() {
    let client = authorizer(&[("delete", "jobs"), ("update", "leases")]).await;
    let error = check_permissions(&client, &checks(&Scope::Cluster, "entente-system"))
        .await
        .unwrap_err();
    assert!(matches!(error, StartupError::Forbidden(_)));
    let message = error.to_string();
    assert!(
        message.contains("delete batch/jobs cluster-wide"),
        "{message}"
    );
    assert!(
        message.contains("update coordination.k8s.io/leases in entente-system"),
        "{message}"
    );
    assert!(!message.contains("get batch/jobs"), "{message}");
}

#[tokio::test]
async fn full_permissions_pass() {
    let client = authorizer(&[]).await;
    let scope = Scope::Namespaces(vec!["nation-a".into()]);
    check_permissions(&client, &checks(&scope, "entente-system"))
        .await
        .unwrap();
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_when_it_stops_renewing() {
    let client = ClientBuilder::new().build().await.unwrap();
    let lease = Duration::from_secs(1);
    let a = LeaseLock::new(
        client.clone(),
        "entente-system",
        "entente-operator",
        "a",
        lease,
    );
    let b = LeaseLock::new(
        client.clone(),
        "entente-system",
        "entente-operator",
        "b",
        lease,
    );
    assert!(a.try_acquire().await.unwrap(), "a takes the free lease");
    assert!(!b.try_acquire().await.unwrap(), "b waits while a renews");
    assert!(a.try_acquire().await.unwrap(), "a renews");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        b.try_acquire().await.unwrap(),
        "b takes over an expired lease"
    );
    assert!(!a.try_acquire().await.unwrap(), "a has lost it");
}
