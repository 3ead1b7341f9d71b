//! The SFU pod: one container serving signalling on [`SIGNALLING_PORT`] and
//! media on the configured UDP port(s) (and TURN over TCP with the TCP
//! fallback), its config and key mounted read-only, rolled when the config
//! changes.

use std::collections::BTreeMap;

use entente_crds::{
    config::{MediaConfig, UdpPorts},
    CallsCluster,
};
use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, HTTPGetAction, KeyToPath, PodSpec, PodTemplateSpec, Probe,
        ProjectedVolumeSource, SecretProjection, Volume, VolumeMount, VolumeProjection,
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use kube::ResourceExt;

use crate::{
    calls::{config_secret, token_secret, COMPONENT, CONFIG_MOUNT, KEY, SIGNALLING_PORT},
    labels,
    workspace::{build::deployment::pull_policy, layout::default_image},
};

/// The user and group the SFU image runs as.
const RUN_AS: i64 = 10001;

/// A port the SFU listens on: its name, number and protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub number: u16,
    pub protocol: &'static str,
}

/// The ports of a node: media (UDP) and the TCP fallback, from the config.
#[derive(Clone, Debug, Default)]
pub struct Ports {
    pub media: Vec<Port>,
}

impl Ports {
    /// Up to 100 ports of a UDP range are declared (Kubernetes lists each).
    pub fn of(media: &MediaConfig) -> Ports {
        let sfu = media.sfu.as_ref();
        let udp = |name: String, number: u16| Port {
            name,
            number,
            protocol: "UDP",
        };
        let mut ports: Vec<Port> = match sfu.map(|s| &s.udp) {
            Some(UdpPorts::Mux(port)) => vec![udp("media".into(), *port)],
            Some(UdpPorts::Range { min, max }) => (*min..=*max)
                .take(100)
                .map(|p| udp(format!("media-{p}"), p))
                .collect(),
            None => Vec::new(),
        };
        if let Some(tcp) = sfu.and_then(|s| s.tcp_port) {
            ports.push(Port {
                name: "tcp-fallback".into(),
                number: tcp,
                protocol: "TCP",
            });
        }
        Ports { media: ports }
    }
}

/// Metadata of a child of `cc` ([`Children`](crate::reconcile::children::Children) makes `cc` its owner).
pub fn metadata(cc: &CallsCluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: cc.namespace(),
        labels: Some(labels::labels(&cc.name_any(), COMPONENT)),
        ..Default::default()
    }
}

/// The pod of an SFU node, with `selector` among its labels.
pub fn template(
    cc: &CallsCluster,
    selector: &BTreeMap<String, String>,
    host_network: bool,
    ports: &Ports,
    config: &str,
) -> PodTemplateSpec {
    let name = cc.name_any();
    let pod = &cc.spec.sfu.pod;
    let mut pod_labels = labels::labels(&name, COMPONENT);
    pod_labels.extend(selector.clone());
    let container_ports = std::iter::once(ContainerPort {
        name: Some("signalling".into()),
        container_port: SIGNALLING_PORT.into(),
        protocol: Some("TCP".into()),
        ..Default::default()
    })
    .chain(ports.media.iter().map(|p| ContainerPort {
        name: Some(p.name.clone()),
        container_port: p.number.into(),
        protocol: Some(p.protocol.into()),
        ..Default::default()
    }))
    .collect();
    let projected = |secret: String, key: &str| VolumeProjection {
        secret: Some(SecretProjection {
            name: secret,
            items: Some(vec![KeyToPath {
                key: key.into(),
                path: key.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            // The admin's annotations, and a digest of the config: a new
            // config rolls the node.
            annotations: Some({
                let mut annotations = pod.annotations.clone();
                annotations.insert(
                    "entente.dev/config-digest".to_string(),
                    crate::workspace::layout::digest(config),
                );
                annotations
            }),
            ..Default::default()
        }),
        spec: Some(crate::pod::placed(
            pod,
            PodSpec {
                host_network: Some(host_network),
                dns_policy: Some(
                    if host_network {
                        "ClusterFirstWithHostNet"
                    } else {
                        "ClusterFirst"
                    }
                    .into(),
                ),
                automount_service_account_token: Some(false),
                // Calls in progress finish before the pod goes (SIGTERM drains).
                termination_grace_period_seconds: Some(3600),
                security_context: Some(crate::pod::pod_security(RUN_AS)),
                affinity: pod.affinity.clone(),
                containers: vec![Container {
                    name: "sfu".into(),
                    image: Some(pod.image.clone().unwrap_or_else(default_image)),
                    image_pull_policy: Some(pull_policy(pod.image_pull_policy).into()),
                    args: Some(vec![
                        "--config".into(),
                        format!("{CONFIG_MOUNT}/media.yaml"),
                    ]),
                    ports: Some(container_ports),
                    readiness_probe: Some(Probe {
                        http_get: Some(HTTPGetAction {
                            path: Some("/healthz".into()),
                            port: IntOrString::Int(SIGNALLING_PORT.into()),
                            ..Default::default()
                        }),
                        period_seconds: Some(10),
                        ..Default::default()
                    }),
                    resources: pod.resources.clone(),
                    security_context: Some(crate::pod::container_security()),
                    volume_mounts: Some(vec![VolumeMount {
                        name: "config".into(),
                        mount_path: CONFIG_MOUNT.into(),
                        read_only: Some(true),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                volumes: Some(vec![Volume {
                    name: "config".into(),
                    projected: Some(ProjectedVolumeSource {
                        sources: Some(vec![
                            projected(config_secret(&name), "media.yaml"),
                            projected(token_secret(&name), KEY),
                        ]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )),
    }
}
