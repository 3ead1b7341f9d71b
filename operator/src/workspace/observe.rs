//! From what the children report to the Workspace's status. Pure.

use entente_crds::{
    workspace::{BucketStatus, DatabaseStatus, WorkspaceEndpoints},
    Workspace, WorkspaceStatus,
};
use k8s_openapi::{api::apps::v1::Deployment, apimachinery::pkg::apis::meta::v1::Time};
use kube::ResourceExt;
use serde_json::Value;

use super::{
    layout::{Names, ADMIN_PORT, COMPONENT, FEDERATION_PORT},
    rollout,
};
use crate::{labels, reconcile::Health};

/// What CloudNativePG phase text means "all instances up".
const CNPG_HEALTHY: &str = "Cluster in healthy state";

/// The database as observed.
#[derive(Clone, Debug)]
pub enum Database {
    External,
    /// The managed Cluster as stored (with CloudNativePG's status), if any.
    Managed(Option<Value>),
    /// The cluster does not serve CloudNativePG's API.
    CloudNativePgMissing,
}

pub struct Observed<'a> {
    pub workspace: &'a Workspace,
    pub deployment: Option<&'a Deployment>,
    pub database: Database,
    pub bucket: Option<BucketStatus>,
    pub certificate_not_after: Option<i64>,
    /// The rollout is held back (migration running or failed).
    pub held: Option<Health>,
}

pub struct Verdict {
    pub status: WorkspaceStatus,
    pub health: Health,
    pub database_ready: Option<(bool, String, String)>,
}

pub fn verdict(observed: Observed) -> Verdict {
    let workspace = observed.workspace;
    let names = Names::of(workspace);
    let namespace = workspace.namespace().unwrap_or_default();
    let deployment = observed.deployment;
    let deployment_status = deployment.and_then(|d| d.status.as_ref());
    let wanted = workspace.spec.replicas;
    let ready = deployment_status
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let (database, database_ready) = database(&names, &observed.database);
    let status = WorkspaceStatus {
        replicas: deployment_status.and_then(|s| s.replicas).or(Some(0)),
        ready_replicas: Some(ready),
        selector: Some(labels::selector_string(&labels::selector(
            &names.workspace,
            COMPONENT,
        ))),
        image: deployment
            .and_then(rollout::deployed_image)
            .map(String::from),
        endpoints: Some(WorkspaceEndpoints {
            client: Some(
                workspace
                    .spec
                    .ingress
                    .as_ref()
                    .map(|i| format!("https://{}", i.host))
                    .unwrap_or_else(|| workspace.spec.site_url.clone()),
            ),
            federation: Some(format!(
                "{}.{namespace}.svc:{FEDERATION_PORT}",
                names.federation_service()
            )),
            admin: Some(format!(
                "{}.{namespace}.svc:{ADMIN_PORT}",
                names.admin_service()
            )),
        }),
        database: Some(database),
        bucket: observed.bucket.clone(),
        federation_certificate_expiry: observed
            .certificate_not_after
            .and_then(|s| k8s_openapi::jiff::Timestamp::from_second(s).ok())
            .map(Time),
        ..Default::default()
    };
    let health = if let Some(held) = observed.held {
        held
    } else if matches!(observed.database, Database::CloudNativePgMissing) {
        Health::stalled(
            "CloudNativePGMissing",
            "CloudNativePG is not installed in this cluster (no postgresql.cnpg.io/v1 Cluster API); \
             install it, or use spec.database.external",
        )
    } else if let Some((false, reason, message)) = &database_ready {
        Health::progressing(reason, message.clone())
    } else if !rolled_out(deployment, wanted) {
        Health::progressing("RollingOut", format!("{ready}/{wanted} servers ready"))
    } else {
        Health::Ready {
            message: format!("{ready}/{wanted} servers ready"),
        }
    };
    Verdict {
        status,
        health,
        database_ready,
    }
}

/// The Deployment's controller has seen its latest spec and every pod runs it.
fn rolled_out(deployment: Option<&Deployment>, wanted: i32) -> bool {
    let Some(deployment) = deployment else {
        return false;
    };
    let Some(status) = &deployment.status else {
        return wanted == 0;
    };
    let seen = status.observed_generation >= deployment.metadata.generation;
    seen && status.updated_replicas.unwrap_or(0) >= wanted
        && status.available_replicas.unwrap_or(0) >= wanted
        && status.replicas.unwrap_or(0) == status.updated_replicas.unwrap_or(0)
}

fn database(
    names: &Names,
    observed: &Database,
) -> (DatabaseStatus, Option<(bool, String, String)>) {
    match observed {
        Database::External => (
            DatabaseStatus {
                phase: Some("External".into()),
                ..Default::default()
            },
            None,
        ),
        Database::CloudNativePgMissing => (
            DatabaseStatus {
                phase: Some("CloudNativePGMissing".into()),
                cluster: Some(names.database_cluster()),
                ..Default::default()
            },
            Some((
                false,
                "CloudNativePGMissing".into(),
                "CloudNativePG is not installed".into(),
            )),
        ),
        Database::Managed(cluster) => {
            let status = cluster.as_ref().and_then(|c| c.get("status"));
            let phase = status.and_then(|s| s["phase"].as_str()).map(String::from);
            let ready_condition = status
                .and_then(|s| s["conditions"].as_array())
                .and_then(|list| list.iter().find(|c| c["type"] == "Ready"));
            let healthy = match ready_condition {
                Some(c) => c["status"] == "True",
                None => phase.as_deref() == Some(CNPG_HEALTHY),
            };
            let message = match (&phase, ready_condition.and_then(|c| c["message"].as_str())) {
                (_, Some(m)) if !m.is_empty() => m.to_string(),
                (Some(p), _) => p.clone(),
                (None, _) => "waiting for CloudNativePG to create the cluster".into(),
            };
            let ready_instances = status
                .and_then(|s| s["readyInstances"].as_i64())
                .map(|n| n as i32);
            (
                DatabaseStatus {
                    phase: phase.or_else(|| Some("Pending".into())),
                    cluster: Some(names.database_cluster()),
                    ready_instances,
                },
                Some(if healthy {
                    (true, "Healthy".into(), message)
                } else {
                    (
                        false,
                        "DatabaseNotReady".into(),
                        format!("database: {message}"),
                    )
                }),
            )
        }
    }
}
