//! The Deployment of a workspace's servers.

use entente_crds::{common::PullPolicy, Workspace};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        core::v1::{
            Affinity, Container, ContainerPort, EnvVar, HTTPGetAction, KeyToPath, PodAffinityTerm,
            PodAntiAffinity, PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource,
            SecretProjection, SecretVolumeSource, TopologySpreadConstraint, Volume, VolumeMount,
            VolumeProjection, WeightedPodAffinityTerm,
        },
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::secrets;
use crate::{
    labels,
    workspace::layout::{
        default_image, metadata, Names, ADMIN_PORT, COMPONENT, CONFIG_DIR, CONFIG_FILE,
        FEDERATION_PORT, HTTP_PORT, METRICS_PORT, SECRETS_DIR,
    },
};

/// The user and group the server runs as (the distroless "nonroot" user).
const RUN_AS: i64 = 65532;

/// What a server pod runs: the service, or the one-shot database migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Serve,
    Migrate,
}

impl Command {
    fn arg(self) -> &'static str {
        match self {
            Command::Serve => "serve",
            Command::Migrate => "migrate",
        }
    }
}

pub fn build(workspace: &Workspace) -> Deployment {
    let names = Names::of(workspace);
    Deployment {
        metadata: metadata(workspace, names.server(), COMPONENT),
        spec: Some(DeploymentSpec {
            replicas: Some(workspace.spec.replicas),
            selector: LabelSelector {
                match_labels: Some(labels::selector(&names.workspace, COMPONENT)),
                ..Default::default()
            },
            // Never below the wanted replicas during a rollout.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: pod_template(workspace, Command::Serve),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The server pod: the same image, secrets, security and scheduling for the
/// Deployment and for the migration Job, so a migration runs exactly as the
/// servers that will use its schema.
pub fn pod_template(workspace: &Workspace, command: Command) -> PodTemplateSpec {
    let names = Names::of(workspace);
    let spec = &workspace.spec;
    let pod = &spec.pod;
    let selector = labels::selector(&names.workspace, COMPONENT);

    let (scratch, scratch_mount) = crate::pod::scratch();
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        ..Default::default()
    };
    let port = |name: &str, port: u16| ContainerPort {
        name: Some(name.into()),
        container_port: port.into(),
        ..Default::default()
    };
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    };
    let secret_sources: Vec<VolumeProjection> = group_by_secret(&secrets::mounts(workspace))
        .into_iter()
        .map(|(secret, items)| VolumeProjection {
            secret: Some(SecretProjection {
                name: secret,
                items: Some(items),
                optional: Some(false),
            }),
            ..Default::default()
        })
        .collect();

    let container = Container {
        name: "server".into(),
        image: Some(pod.image.clone().unwrap_or_else(default_image)),
        image_pull_policy: Some(pull_policy(pod.image_pull_policy).into()),
        args: Some(vec![
            command.arg().into(),
            "--config".into(),
            format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        ]),
        env: Some(vec![
            EnvVar {
                name: "RUST_LOG".into(),
                value: Some("info".into()),
                ..Default::default()
            },
            // Uploads are spooled here before they go to the object store.
            EnvVar {
                name: "TMPDIR".into(),
                value: Some("/tmp".into()),
                ..Default::default()
            },
        ]),
        ports: Some(vec![
            port("http", HTTP_PORT),
            port("federation", FEDERATION_PORT),
            port("admin", ADMIN_PORT),
            port("metrics", METRICS_PORT),
        ]),
        readiness_probe: (command == Command::Serve).then(|| probe("/readyz", 10)),
        liveness_probe: (command == Command::Serve).then(|| Probe {
            failure_threshold: Some(6),
            ..probe("/healthz", 20)
        }),
        resources: pod.resources.clone(),
        security_context: Some(crate::pod::container_security()),
        volume_mounts: Some(vec![
            mount("runtime", CONFIG_DIR),
            mount("secrets", SECRETS_DIR),
            scratch_mount,
        ]),
        ..Default::default()
    };

    let spread = if pod.topology_spread_constraints.is_empty() {
        ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
            .into_iter()
            .map(|key| TopologySpreadConstraint {
                max_skew: 1,
                topology_key: key.into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect()
    } else {
        pod.topology_spread_constraints.clone()
    };
    let affinity = pod.affinity.clone().unwrap_or_else(|| Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: "kubernetes.io/hostname".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    });

    crate::pod::template(
        pod,
        labels::labels(&names.workspace, COMPONENT),
        PodSpec {
            // The server never calls the Kubernetes API.
            automount_service_account_token: Some(false),
            containers: vec![container],
            affinity: Some(affinity),
            topology_spread_constraints: Some(spread),
            security_context: Some(crate::pod::pod_security(RUN_AS)),
            volumes: Some(vec![
                Volume {
                    name: "runtime".into(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(names.runtime_secret()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "secrets".into(),
                    projected: Some(ProjectedVolumeSource {
                        sources: Some(secret_sources),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                scratch,
            ]),
            restart_policy: (command == Command::Migrate).then(|| "Never".to_string()),
            ..Default::default()
        },
    )
}

pub(crate) fn pull_policy(policy: PullPolicy) -> &'static str {
    match policy {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    }
}

/// One projection per Secret, its keys placed at their paths.
fn group_by_secret(mounts: &[secrets::SecretMount]) -> Vec<(String, Vec<KeyToPath>)> {
    let mut grouped: Vec<(String, Vec<KeyToPath>)> = Vec::new();
    for mount in mounts {
        let item = KeyToPath {
            key: mount.key.clone(),
            path: mount.relative(),
            ..Default::default()
        };
        match grouped
            .iter_mut()
            .find(|(secret, _)| *secret == mount.secret)
        {
            Some((_, items)) => items.push(item),
            None => grouped.push((mount.secret.clone(), vec![item])),
        }
    }
    grouped
}
