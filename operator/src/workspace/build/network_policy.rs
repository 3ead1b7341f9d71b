//! The network boundary of a workspace (the DMZ of the reference
//! architecture): deny by default, then open exactly clients → HTTP,
//! partners' networks → federation, the operator → admin, and egress to DNS,
//! the database, declared networks (object store, external database), the
//! language model (its server's pods, or an external endpoint's declared
//! networks, on its port), the Apertium service run beside it, and the
//! partners.

use std::collections::BTreeMap;

use entente_crds::{LanguageModel, Workspace};
use k8s_openapi::{
    api::networking::v1::{
        IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule,
        NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use crate::{
    labels,
    workspace::layout::{
        metadata, Names, ADMIN_PORT, COMPONENT, FEDERATION_PORT, HTTP_PORT, METRICS_PORT,
    },
};

/// Where the operator runs, so only it may reach the admin endpoint.
pub struct Operator {
    pub namespace: String,
}

pub(crate) fn port(number: u16, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(number.into())),
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

fn cidrs(blocks: &[String]) -> Vec<NetworkPolicyPeer> {
    blocks
        .iter()
        .map(|cidr| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.clone(),
                except: None,
            }),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn matching(labels: BTreeMap<String, String>) -> Option<LabelSelector> {
    Some(LabelSelector {
        match_labels: Some(labels),
        ..Default::default()
    })
}

/// The rule letting the server reach its model and nothing else of it:
/// the model server's pods on their port, or an external endpoint's
/// declared networks on the URL's port.
fn model_egress(model: &LanguageModel) -> Option<NetworkPolicyEgressRule> {
    if let Some(hosted) = &model.spec.self_hosted {
        return Some(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                pod_selector: matching(labels::selector(
                    &kube::ResourceExt::name_any(model),
                    crate::models::build::COMPONENT,
                )),
                ..Default::default()
            }]),
            ports: Some(vec![port(hosted.port as u16, "TCP")]),
        });
    }
    let external = model.spec.external.as_ref()?;
    if external.cidrs.is_empty() {
        return None;
    }
    let url: Option<axum::http::Uri> = external.url.parse().ok();
    let number = url.as_ref().and_then(|u| u.port_u16()).unwrap_or(
        match url.as_ref().and_then(|u| u.scheme_str()) {
            Some("http") => 80,
            _ => 443,
        },
    );
    Some(NetworkPolicyEgressRule {
        to: Some(cidrs(&external.cidrs)),
        ports: Some(vec![port(number, "TCP")]),
    })
}

pub fn build(
    workspace: &Workspace,
    operator: &Operator,
    model: Option<&LanguageModel>,
) -> Vec<NetworkPolicy> {
    let network = &workspace.spec.network;
    if !network.policies {
        return Vec::new();
    }
    let names = Names::of(workspace);
    let server = matching(labels::selector(&names.workspace, COMPONENT));
    let policy = |suffix: &str,
                  types: &[&str],
                  ingress: Option<Vec<NetworkPolicyIngressRule>>,
                  egress: Option<Vec<NetworkPolicyEgressRule>>| NetworkPolicy {
        metadata: metadata(
            workspace,
            format!("{}-{suffix}", names.workspace),
            COMPONENT,
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: server.clone(),
            policy_types: Some(types.iter().map(|t| t.to_string()).collect()),
            ingress,
            egress,
        }),
    };

    // Clients: from where the spec says (typically the ingress controller), else any pod.
    let client_peer = match &network.client_ingress {
        Some(peer) => NetworkPolicyPeer {
            namespace_selector: peer.namespace_selector.clone(),
            pod_selector: peer.pod_selector.clone(),
            ..Default::default()
        },
        None => NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            ..Default::default()
        },
    };
    let operator_peer = NetworkPolicyPeer {
        namespace_selector: matching(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            operator.namespace.clone(),
        )])),
        pod_selector: matching(BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "entente".to_string()),
            (
                "app.kubernetes.io/component".to_string(),
                "operator".to_string(),
            ),
        ])),
        ..Default::default()
    };
    // Metrics: from where the spec says, else the operator's namespace.
    let metrics_peer = match &network.metrics_ingress {
        Some(peer) => NetworkPolicyPeer {
            namespace_selector: peer.namespace_selector.clone(),
            pod_selector: peer.pod_selector.clone(),
            ..Default::default()
        },
        None => NetworkPolicyPeer {
            namespace_selector: operator_peer.namespace_selector.clone(),
            ..Default::default()
        },
    };
    let mut ingress = vec![
        NetworkPolicyIngressRule {
            from: Some(vec![client_peer]),
            ports: Some(vec![port(HTTP_PORT, "TCP")]),
        },
        NetworkPolicyIngressRule {
            from: Some(vec![operator_peer]),
            ports: Some(vec![port(ADMIN_PORT, "TCP")]),
        },
        NetworkPolicyIngressRule {
            from: Some(vec![metrics_peer]),
            ports: Some(vec![port(METRICS_PORT, "TCP")]),
        },
    ];
    // Federation is closed unless partners' networks are declared.
    if !network.partner_cidrs.is_empty() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(cidrs(&network.partner_cidrs)),
            ports: Some(vec![port(FEDERATION_PORT, "TCP")]),
        });
    }

    let mut egress = vec![NetworkPolicyEgressRule {
        // DNS, wherever the cluster runs it.
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            ..Default::default()
        }]),
        ports: Some(vec![port(53, "UDP"), port(53, "TCP")]),
    }];
    if workspace.spec.database.managed.is_some() {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                pod_selector: matching(BTreeMap::from([(
                    "cnpg.io/cluster".to_string(),
                    names.database_cluster(),
                )])),
                ..Default::default()
            }]),
            ports: Some(vec![port(5432, "TCP")]),
        });
    }
    egress.extend(model.and_then(model_egress));
    // The Apertium service the operator runs beside it.
    if super::apertium::url(workspace).is_some() {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                pod_selector: matching(labels::selector(
                    &names.workspace,
                    super::apertium::COMPONENT_APERTIUM,
                )),
                ..Default::default()
            }]),
            ports: Some(vec![port(super::apertium::PORT, "TCP")]),
        });
    }
    let outside: Vec<String> = network
        .egress_cidrs
        .iter()
        .chain(&network.partner_cidrs)
        .cloned()
        .collect();
    if !outside.is_empty() {
        egress.push(NetworkPolicyEgressRule {
            to: Some(cidrs(&outside)),
            ports: None,
        });
    }

    vec![
        // Everything not opened below is closed.
        policy("default-deny", &["Ingress", "Egress"], None, None),
        policy("allow", &["Ingress", "Egress"], Some(ingress), Some(egress)),
    ]
}
