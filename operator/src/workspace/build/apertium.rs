//! Apertium's translation service, run beside a workspace whose
//! `features.translation.provider.apertium` gives a `pod` rather than a
//! URL: a Deployment and a Service `<ws>-apertium` on APY's port, and a
//! NetworkPolicy that lets only the workspace's servers reach it and lets
//! it reach nothing (the text it translates stays inside). Pure.

use entente_crds::{common::PodSettings, render::translation, Workspace};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Container, ContainerPort, HTTPGetAction, PodSpec, Probe, Service, ServicePort,
            ServiceSpec,
        },
        networking::v1::{
            NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
        },
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use kube::ResourceExt;

use crate::{
    labels,
    workspace::{
        build::{
            deployment::pull_policy,
            network_policy::{matching, port},
        },
        layout::{metadata, COMPONENT},
    },
};

pub const COMPONENT_APERTIUM: &str = "translation";
/// APY's port.
pub const PORT: u16 = 2737;
/// The user and group Apertium's service runs as.
const RUN_AS: i64 = 10001;

pub fn name(workspace: &Workspace) -> String {
    format!("{}-apertium", workspace.name_any())
}

/// The pod settings of the service the operator runs for `workspace`, if
/// it runs one: Apertium with a `pod` and no `url`.
fn run_here(workspace: &Workspace) -> Option<&PodSettings> {
    let apertium = translation::apertium(workspace)?;
    apertium.pod.as_ref().filter(|_| apertium.url.is_none())
}

/// The URL of the service the operator runs for `workspace`, if it runs one.
pub fn url(workspace: &Workspace) -> Option<String> {
    run_here(workspace).map(|_| {
        format!(
            "http://{}.{}.svc:{PORT}",
            name(workspace),
            workspace.namespace().unwrap_or_default()
        )
    })
}

/// The Deployment, Service and NetworkPolicy, when `workspace` asks the
/// operator to run Apertium's service.
pub fn build(workspace: &Workspace) -> Option<(Deployment, Service, NetworkPolicy)> {
    let pod = run_here(workspace)?;
    let replicas = translation::apertium(workspace)?.replicas;
    let instance = workspace.name_any();
    let selector = labels::selector(&instance, COMPONENT_APERTIUM);
    let (scratch, scratch_mount) = crate::pod::scratch();
    let probe = |period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/listPairs".into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: metadata(workspace, name(workspace), COMPONENT_APERTIUM),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: crate::pod::template(
                pod,
                labels::labels(&instance, COMPONENT_APERTIUM),
                PodSpec {
                    automount_service_account_token: Some(false),
                    security_context: Some(crate::pod::pod_security(RUN_AS)),
                    affinity: pod.affinity.clone(),
                    containers: vec![Container {
                        name: "apertium".into(),
                        image: pod.image.clone(),
                        image_pull_policy: Some(pull_policy(pod.image_pull_policy).into()),
                        ports: Some(vec![ContainerPort {
                            name: Some("http".into()),
                            container_port: PORT.into(),
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        }]),
                        readiness_probe: Some(probe(10)),
                        startup_probe: Some(Probe {
                            failure_threshold: Some(60),
                            ..probe(5)
                        }),
                        resources: pod.resources.clone(),
                        security_context: Some(crate::pod::container_security()),
                        volume_mounts: Some(vec![scratch_mount]),
                        ..Default::default()
                    }],
                    volumes: Some(vec![scratch]),
                    ..Default::default()
                },
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let service = Service {
        metadata: metadata(workspace, name(workspace), COMPONENT_APERTIUM),
        spec: Some(ServiceSpec {
            selector: Some(selector.clone()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: PORT.into(),
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let policy = NetworkPolicy {
        metadata: metadata(workspace, name(workspace), COMPONENT_APERTIUM),
        spec: Some(NetworkPolicySpec {
            pod_selector: matching(selector),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: matching(labels::selector(&instance, COMPONENT)),
                    ..Default::default()
                }]),
                ports: Some(vec![port(PORT, "TCP")]),
            }]),
            // No egress rule: it reaches nothing.
            egress: Some(Vec::new()),
        }),
    };
    Some((deployment, service, policy))
}
