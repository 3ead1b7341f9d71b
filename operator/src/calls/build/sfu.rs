//! The SFU nodes: in `Deployment` mode, per node `i` a Deployment
//! `<cc>-sfu-<i>` of one pod, a signalling Service `<cc>-sfu-<i>` (the
//! server keeps each call on one node, so every node has its own address)
//! and a media Service `<cc>-sfu-<i>-media` of `spec.sfu.serviceType`; in
//! `HostNetwork` mode one DaemonSet `<cc>-sfu`, a pod per selected node on
//! the node's own network (no NAT between clients and media, no Service).

use std::collections::BTreeMap;

use entente_crds::{calls_cluster::MediaServiceType, CallsCluster};
use k8s_openapi::{
    api::{
        apps::v1::{
            DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, Deployment, DeploymentSpec,
            DeploymentStrategy,
        },
        core::v1::{Service, ServicePort, ServiceSpec},
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use kube::ResourceExt;

use super::pod::{metadata, template, Port, Ports};
use crate::{
    calls::{node, COMPONENT, SIGNALLING_PORT},
    labels,
};

fn node_selector(cc: &CallsCluster, i: i32) -> BTreeMap<String, String> {
    let mut selector = labels::selector(&cc.name_any(), COMPONENT);
    selector.insert("entente.dev/sfu-node".into(), i.to_string());
    selector
}

/// Node `i` (`Deployment` mode).
pub fn deployment(cc: &CallsCluster, i: i32, ports: &Ports, config: &str) -> Deployment {
    let selector = node_selector(cc, i);
    Deployment {
        metadata: metadata(cc, node(&cc.name_any(), i)),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            // One node is one pod: a call held on it never has two.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: template(cc, &selector, false, ports, config),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The signalling and media Services of node `i` (`Deployment` mode).
pub fn services(cc: &CallsCluster, i: i32, ports: &Ports) -> Vec<Service> {
    let name = node(&cc.name_any(), i);
    let selector = node_selector(cc, i);
    let service = |name: String, type_: &str, ports: Vec<ServicePort>| Service {
        metadata: metadata(cc, name),
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            selector: Some(selector.clone()),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    };
    let port = |p: &Port| ServicePort {
        name: Some(p.name.clone()),
        protocol: Some(p.protocol.into()),
        port: p.number.into(),
        target_port: Some(IntOrString::Int(p.number.into())),
        ..Default::default()
    };
    let signalling = Port {
        name: "signalling".into(),
        number: SIGNALLING_PORT,
        protocol: "TCP",
    };
    let media_type = match cc.spec.sfu.service_type {
        MediaServiceType::LoadBalancer => "LoadBalancer",
        MediaServiceType::NodePort => "NodePort",
        MediaServiceType::ClusterIP => "ClusterIP",
    };
    vec![
        service(name.clone(), "ClusterIP", vec![port(&signalling)]),
        service(
            format!("{name}-media"),
            media_type,
            ports.media.iter().map(port).collect(),
        ),
    ]
}

/// One SFU pod per selected node (`HostNetwork` mode).
pub fn daemon_set(cc: &CallsCluster, ports: &Ports, config: &str) -> DaemonSet {
    let selector = labels::selector(&cc.name_any(), COMPONENT);
    DaemonSet {
        metadata: metadata(cc, format!("{}-sfu", cc.name_any())),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            template: template(cc, &selector, true, ports, config),
            ..Default::default()
        }),
        ..Default::default()
    }
}
