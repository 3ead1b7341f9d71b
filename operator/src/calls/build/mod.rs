//! CallsCluster spec → objects, one builder per child kind. Pure: no API
//! calls. [`children`] puts them together for the controller.

pub mod media_config;
pub mod pod;
pub mod secrets;
pub mod sfu;

use entente_crds::{calls_cluster::SfuMode, CallsCluster};
use k8s_openapi::api::core::v1::Secret;
use kube::{api::ApiResource, ResourceExt};

use super::token_secret;
use crate::reconcile::children::Children;

/// Everything the CallsCluster wants; `key` is the join-token key that
/// exists (kept) or `None` (a new one is created).
pub fn children(cc: &CallsCluster, key: Option<&[u8]>) -> Children {
    let mut children = Children::new(cc);
    match key {
        Some(_) => children.keep(
            &ApiResource::erase::<Secret>(&()),
            token_secret(&cc.name_any()),
        ),
        None => children.add(&secrets::join_token(cc, super::random_key().as_bytes())),
    }
    let media = media_config::build(cc);
    let config = media.to_yaml();
    children.add(&secrets::media_config(cc, &config));
    let ports = pod::Ports::of(&media);
    if cc.spec.sfu.mode == SfuMode::HostNetwork {
        children.add(&sfu::daemon_set(cc, &ports, &config));
        return children;
    }
    for node in 0..super::nodes(cc) {
        children.add(&sfu::deployment(cc, node, &ports, &config));
        for service in sfu::services(cc, node, &ports) {
            children.add(&service);
        }
    }
    children
}

#[cfg(test)]
mod tests {
    use entente_crds::CallsCluster;
    use k8s_openapi::api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::{Secret, Service},
    };

    use super::*;

    fn calls_cluster(sfu: serde_json::Value) -> CallsCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "entente.dev/v1alpha1",
            "kind": "CallsCluster",
            "metadata": {"name": "calls", "namespace": "coalition", "uid": "u-1"},
            "spec": {"sfu": sfu},
        }))
        .unwrap()
    }

    fn sfu_deployment() -> CallsCluster {
        calls_cluster(serde_json::json!({
            "replicas": 2,
            "udpPort": 40000,
            "tcpFallback": true,
            "tcpPort": 7881,
            "serviceType": "LoadBalancer",
            "pod": {"image": "registry.example/sfu:1", "imagePullSecrets": [{"name": "pull"}]},
        }))
    }

    #[test]
    fn each_node_is_a_deployment_of_one_pod_with_its_own_services() {
        let cc = sfu_deployment();
        let ports = pod::Ports::of(&media_config::build(&cc));
        let deployment: Deployment = sfu::deployment(&cc, 1, &ports, "config");
        assert_eq!(deployment.metadata.name.as_deref(), Some("calls-sfu-1"));
        let spec = deployment.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(
            spec.strategy.unwrap().type_.as_deref(),
            Some("Recreate"),
            "a call held on a node never has two pods"
        );
        let selector = spec.selector.match_labels.unwrap();
        assert_eq!(selector["entente.dev/sfu-node"], "1");
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.host_network, Some(false));
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "pull");
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some("registry.example/sfu:1"));
        let declared: Vec<(String, i32, String)> = container
            .ports
            .iter()
            .flatten()
            .map(|p| {
                (
                    p.name.clone().unwrap(),
                    p.container_port,
                    p.protocol.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            declared,
            [
                ("signalling".into(), 7880, "TCP".into()),
                ("media".into(), 40000, "UDP".into()),
                ("tcp-fallback".into(), 7881, "TCP".into()),
            ]
        );
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(pod.automount_service_account_token, Some(false));

        let services: Vec<Service> = sfu::services(&cc, 1, &ports);
        let described: Vec<(String, String, Vec<i32>)> = services
            .iter()
            .map(|s| {
                let spec = s.spec.as_ref().unwrap();
                (
                    s.metadata.name.clone().unwrap(),
                    spec.type_.clone().unwrap(),
                    spec.ports.iter().flatten().map(|p| p.port).collect(),
                )
            })
            .collect();
        assert_eq!(
            described,
            [
                ("calls-sfu-1".into(), "ClusterIP".into(), vec![7880]),
                (
                    "calls-sfu-1-media".into(),
                    "LoadBalancer".into(),
                    vec![40000, 7881]
                ),
            ]
        );
    }

    #[test]
    fn a_new_config_rolls_the_nodes() {
        let cc = sfu_deployment();
        let ports = pod::Ports::of(&media_config::build(&cc));
        let digest = |config: &str| {
            sfu::deployment(&cc, 0, &ports, config)
                .spec
                .unwrap()
                .template
                .metadata
                .unwrap()
                .annotations
                .unwrap()["entente.dev/config-digest"]
                .clone()
        };
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
    }

    #[test]
    fn host_network_is_one_daemon_set_and_no_services() {
        let cc = calls_cluster(serde_json::json!({
            "mode": "HostNetwork",
            "udpPortRange": {"min": 50000, "max": 50002},
        }));
        let children = children(&cc, Some(b"kept"));
        let kinds = children.kinds();
        assert_eq!(
            kinds,
            [
                ("Secret".to_string(), "calls-sfu-config".to_string()),
                ("DaemonSet".to_string(), "calls-sfu".to_string()),
            ],
            "the kept join-token Secret is not rewritten"
        );
        let ports = pod::Ports::of(&media_config::build(&cc));
        let daemon_set: DaemonSet = sfu::daemon_set(&cc, &ports, "config");
        let pod = daemon_set.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.host_network, Some(true));
        assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
        let media: Vec<i32> = pod.containers[0]
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref() == Some("UDP"))
            .map(|p| p.container_port)
            .collect();
        assert_eq!(media, [50000, 50001, 50002]);
    }

    #[test]
    fn the_key_is_made_once_and_mounted_beside_the_config() {
        let cc = sfu_deployment();
        let made = children(&cc, None);
        assert!(made
            .kinds()
            .contains(&("Secret".to_string(), "calls-join-token".to_string())));
        let secret: Secret = secrets::join_token(&cc, b"k");
        assert_eq!(secret.data.unwrap()["key"].0, b"k");
        let ports = pod::Ports::of(&media_config::build(&cc));
        let pod = sfu::deployment(&cc, 0, &ports, "config")
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        let sources = pod.volumes.unwrap()[0]
            .projected
            .clone()
            .unwrap()
            .sources
            .unwrap();
        let secrets: Vec<String> = sources
            .iter()
            .map(|s| s.secret.as_ref().unwrap().name.clone())
            .collect();
        assert_eq!(secrets, ["calls-sfu-config", "calls-join-token"]);
    }
}
