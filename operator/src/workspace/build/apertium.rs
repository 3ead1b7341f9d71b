//! Apertium's translation service, run beside a workspace whose
//! `features.translation.provider.apertium` gives a `pod` rather than a
//! URL: a Deployment and a Service `<ws>-apertium` on APY's port, and a
//! NetworkPolicy that lets only the workspace's servers reach it and lets
//! it reach nothing (the text it translates stays inside). Pure.

use entente_crds::{render::translation, Workspace};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, PodSpec, Probe, Service,
            ServicePort, ServiceSpec, Volume, VolumeMount,
        },
        networking::v1::{
            NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
            NetworkPolicySpec,
        },
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use kube::ResourceExt;

use crate::{
    labels,
    workspace::{
        build::deployment::pull_policy,
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

/// The URL of the service the operator runs for `workspace`, if it runs one.
pub fn url(workspace: &Workspace) -> Option<String> {
    let apertium = translation::apertium(workspace)?;
    (apertium.url.is_none() && apertium.pod.is_some()).then(|| {
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
    let apertium = translation::apertium(workspace)?;
    let pod = apertium.pod.as_ref().filter(|_| apertium.url.is_none())?;
    let instance = workspace.name_any();
    let selector = labels::selector(&instance, COMPONENT_APERTIUM);
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
            replicas: Some(apertium.replicas),
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
                        // The root file system is read-only.
                        volume_mounts: Some(vec![VolumeMount {
                            name: "tmp".into(),
                            mount_path: "/tmp".into(),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: "tmp".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    }]),
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
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(labels::selector(&instance, COMPONENT)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(PORT.into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
            }]),
            // No egress rule: it reaches nothing.
            egress: Some(Vec::new()),
        }),
    };
    Some((deployment, service, policy))
}
