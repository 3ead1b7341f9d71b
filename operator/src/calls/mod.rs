//! The CallsCluster controller: the SFU fleet, and calls rendered into the
//! Workspaces that use it.
//!
//! Children of a CallsCluster `<cc>`:
//! - Secret `<cc>-join-token`: the key join tokens are signed (by the
//!   workspace servers) and checked (by the SFUs) with; generated once and
//!   kept, never logged, never in a ConfigMap.
//! - Secret `<cc>-sfu-config`: the SFUs' `MediaConfig`.
//! - Per SFU node `i`: a Deployment `<cc>-sfu-<i>` of one pod, a signalling
//!   Service `<cc>-sfu-<i>` (the server keeps each call on one node, so
//!   every node has its own address) and a media Service
//!   `<cc>-sfu-<i>-media` (UDP, of `spec.sfu.serviceType`).
//!
//! A Workspace whose `spec.features.calls` names the CallsCluster gets a
//! `calls` section in its RuntimeConfig (the nodes' signalling URLs, the
//! token lifetime) and the key beside its config ([`attach`]).
//!
//! In `mode: HostNetwork` a DaemonSet runs one SFU pod per selected node on
//! the node's own network; the servers reach each by its address.
//!
//! With `tcpFallback`, each node also serves TURN over TCP on `tcpPort`, for
//! clients whose UDP is blocked.
//!
//! Not built yet, and said so in status: TURN credentials for configured
//! ICE servers, and the offloader.

use std::{collections::BTreeMap, sync::Arc};

use entente_crds::{
    calls_cluster::{MediaServiceType, SfuMode},
    config::{
        IceServerConfig, MediaConfig, SecretSource, SfuConfig, UdpPorts, MEDIA_CONFIG_VERSION,
    },
    CallsCluster, Workspace,
};
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::{Pod, Secret},
    },
    ByteString,
};
use kube::{api::ApiResource, runtime::controller::Action, Api, ResourceExt};
use serde_json::{json, Value};

use crate::{
    labels,
    pending::{self, Judgement},
    reconcile::{children::Children, Context, Error, Health},
    workspace::layout::default_image,
};

const COMPONENT: &str = "sfu";
/// Where an SFU pod serves signalling, `/status` and `/metrics`.
pub const SIGNALLING_PORT: u16 = 7880;
const KEY: &str = "key";
const CONFIG_MOUNT: &str = "/etc/entente/media";

pub fn token_secret(cc: &str) -> String {
    format!("{cc}-join-token")
}

fn config_secret(cc: &str) -> String {
    format!("{cc}-sfu-config")
}

fn node(cc: &str, i: i32) -> String {
    format!("{cc}-sfu-{i}")
}

fn nodes(cc: &CallsCluster) -> i32 {
    cc.spec.sfu.replicas.unwrap_or(2)
}

/// The signalling URL of each node, as the workspace servers reach it: the
/// node's Service in Deployment mode; in HostNetwork mode the address of
/// each ready SFU pod (its node's), listed from the API.
pub async fn node_urls(
    client: &kube::Client,
    cc: &CallsCluster,
) -> Result<Vec<String>, kube::Error> {
    let namespace = cc.namespace().unwrap_or_default();
    if cc.spec.sfu.mode != SfuMode::HostNetwork {
        return Ok((0..nodes(cc))
            .map(|i| {
                format!(
                    "http://{}.{namespace}.svc:{SIGNALLING_PORT}",
                    node(&cc.name_any(), i)
                )
            })
            .collect());
    }
    let selector = labels::selector_string(&labels::selector(&cc.name_any(), COMPONENT));
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?;
    let mut urls: Vec<String> = pods
        .items
        .iter()
        .filter_map(|pod| {
            let status = pod.status.as_ref()?;
            let ready = status
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let ip = status.pod_ip.as_ref()?;
            ready.then(|| {
                if ip.contains(':') {
                    format!("http://[{ip}]:{SIGNALLING_PORT}")
                } else {
                    format!("http://{ip}:{SIGNALLING_PORT}")
                }
            })
        })
        .collect();
    urls.sort();
    Ok(urls)
}

/// The SFUs' MediaConfig.
pub fn media_config(cc: &CallsCluster) -> MediaConfig {
    let sfu = &cc.spec.sfu;
    let udp = match &sfu.udp_port_range {
        Some(range) => UdpPorts::Range {
            min: range.min as u16,
            max: range.max as u16,
        },
        None => UdpPorts::Mux(
            sfu.udp_port
                .unwrap_or(entente_crds::calls_cluster::DEFAULT_MEDIA_PORT) as u16,
        ),
    };
    MediaConfig {
        version: MEDIA_CONFIG_VERSION,
        cluster: cc.name_any(),
        join_token_key: SecretSource::File(format!("{CONFIG_MOUNT}/{KEY}").into()),
        sfu: Some(SfuConfig {
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], SIGNALLING_PORT)),
            udp,
            // The TCP fallback: TURN over TCP on the node, relaying to its UDP port.
            tcp_port: sfu.tcp_fallback.then_some(sfu.tcp_port as u16),
            advertised_addresses: sfu.advertised_addresses.clone(),
            // STUN only: TURN credentials would need their Secrets mounted (not built yet).
            ice_servers: sfu
                .ice_servers
                .iter()
                .filter(|s| s.username.is_none())
                .map(|s| IceServerConfig {
                    urls: s.urls.clone(),
                    username: None,
                    credential: None,
                })
                .collect(),
            max_participants_per_room: sfu.max_participants_per_room.max(2) as u32,
        }),
        offloader: None,
    }
}

fn metadata(cc: &CallsCluster, name: String) -> Value {
    json!({
        "name": name,
        "namespace": cc.namespace().unwrap_or_default(),
        "labels": labels::labels(&cc.name_any(), COMPONENT),
    })
}

fn secret(cc: &CallsCluster, name: String, data: BTreeMap<String, Vec<u8>>) -> Secret {
    Secret {
        metadata: serde_json::from_value(metadata(cc, name)).expect("metadata"),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Everything the CallsCluster wants; `key` is the join-token key that
/// exists (kept) or a new one (created).
pub fn children(cc: &CallsCluster, key: Option<&[u8]>) -> Children {
    let mut children = Children::new(cc);
    let name = cc.name_any();
    match key {
        Some(_) => children.keep(&ApiResource::erase::<Secret>(&()), token_secret(&name)),
        None => children.add(&secret(
            cc,
            token_secret(&name),
            BTreeMap::from([(KEY.to_string(), random_key().into_bytes())]),
        )),
    }
    let config = media_config(cc).to_yaml();
    children.add(&secret(
        cc,
        config_secret(&name),
        BTreeMap::from([("media.yaml".to_string(), config.clone().into_bytes())]),
    ));
    let pod = &cc.spec.sfu.pod;
    let image = pod.image.clone().unwrap_or_else(default_image);
    let media = media_config(cc);
    let mut udp_ports: Vec<Value> = match media.sfu.as_ref().map(|s| &s.udp) {
        Some(UdpPorts::Mux(port)) => vec![json!({"name": "media", "protocol": "UDP", "port": port, "targetPort": port})],
        Some(UdpPorts::Range { min, max }) => (*min..=*max)
            .take(100)
            .map(|p| json!({"name": format!("media-{p}"), "protocol": "UDP", "port": p, "targetPort": p}))
            .collect(),
        None => Vec::new(),
    };
    if let Some(tcp) = media.sfu.as_ref().and_then(|s| s.tcp_port) {
        udp_ports.push(
            json!({"name": "tcp-fallback", "protocol": "TCP", "port": tcp, "targetPort": tcp}),
        );
    }
    let service_type = match cc.spec.sfu.service_type {
        MediaServiceType::LoadBalancer => "LoadBalancer",
        MediaServiceType::NodePort => "NodePort",
        MediaServiceType::ClusterIP => "ClusterIP",
    };
    let template = |selector: &BTreeMap<String, String>, host_network: bool| {
        let mut pod_labels = labels::labels(&name, COMPONENT);
        pod_labels.extend(selector.clone());
        let container_ports: Vec<Value> = std::iter::once(
            json!({"name": "signalling", "containerPort": SIGNALLING_PORT}),
        )
        .chain(udp_ports.iter().map(
            |p| json!({"name": p["name"], "containerPort": p["port"], "protocol": p["protocol"]}),
        ))
        .collect();
        json!({
            "metadata": {
                "labels": pod_labels,
                // A new config rolls the node.
                "annotations": {"entente.dev/config-digest": crate::workspace::layout::digest(&config)},
            },
            "spec": {
                "hostNetwork": host_network,
                "dnsPolicy": if host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" },
                "automountServiceAccountToken": false,
                // Calls in progress finish before the pod goes (SIGTERM drains).
                "terminationGracePeriodSeconds": 3600,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                "nodeSelector": pod.node_selector,
                "tolerations": pod.tolerations,
                "containers": [{
                    "name": "sfu",
                    "image": image,
                    "args": ["--config", format!("{CONFIG_MOUNT}/media.yaml")],
                    "ports": container_ports,
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": SIGNALLING_PORT}, "periodSeconds": 10},
                    "resources": pod.resources,
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": true}],
                }],
                "volumes": [{"name": "config", "projected": {"sources": [
                    {"secret": {"name": config_secret(&name), "items": [{"key": "media.yaml", "path": "media.yaml"}]}},
                    {"secret": {"name": token_secret(&name), "items": [{"key": KEY, "path": KEY}]}},
                ]}}],
            },
        })
    };
    if cc.spec.sfu.mode == SfuMode::HostNetwork {
        // One pod per selected node, on the node's own addresses: no NAT
        // between clients and media, no Service in the way.
        let selector = labels::selector(&name, COMPONENT);
        let daemon_set = json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": metadata(cc, format!("{name}-sfu")),
            "spec": {
                "selector": {"matchLabels": selector},
                "updateStrategy": {"type": "OnDelete"},
                "template": template(&selector, true),
            },
        });
        children.add_value(
            ApiResource::erase::<DaemonSet>(&()),
            strip_nulls(daemon_set),
            true,
        );
        return children;
    }
    for i in 0..nodes(cc) {
        let node_name = node(&name, i);
        let mut selector = labels::selector(&name, COMPONENT);
        selector.insert("entente.dev/sfu-node".into(), i.to_string());
        let deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(cc, node_name.clone()),
            "spec": {
                "replicas": 1,
                // One node is one pod: a call held on it never has two.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": selector},
                "template": template(&selector, false),
            },
        });
        children.add_value(
            ApiResource::erase::<Deployment>(&()),
            strip_nulls(deployment),
            true,
        );
        let service = |name: String, type_: &str, ports: Vec<Value>| {
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata(cc, name),
                "spec": {"type": type_, "selector": selector, "ports": ports},
            })
        };
        let services = ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&());
        children.add_value(
            services.clone(),
            service(
                node_name.clone(),
                "ClusterIP",
                vec![json!({"name": "signalling", "protocol": "TCP", "port": SIGNALLING_PORT, "targetPort": SIGNALLING_PORT})],
            ),
            true,
        );
        children.add_value(
            services,
            service(
                format!("{node_name}-media"),
                service_type,
                udp_ports.clone(),
            ),
            true,
        );
    }
    children
}

/// Drops nulls and empty collections a builder left, so server-side apply
/// does not claim fields it does not set.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| {
                    !(v.is_null()
                        || v.as_array().is_some_and(|a| a.is_empty())
                        || v.as_object().is_some_and(|o| o.is_empty()))
                })
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// 48 random alphanumerics (~285 bits).
fn random_key() -> String {
    crate::random::random_text(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        48,
    )
}

/// What is not built yet of a spec, to say in its status.
fn not_built(cc: &CallsCluster) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if cc.spec.offloader.is_some() {
        missing.push("the offloader (recording, transcription, captions)");
    }
    if cc.spec.sfu.ice_servers.iter().any(|s| s.username.is_some()) {
        missing.push("TURN servers with credentials (only STUN servers are handed out)");
    }
    missing
}

pub async fn reconcile(cc: Arc<CallsCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let client = ctx.client.clone();
    let namespace = cc.namespace().unwrap_or_default();
    let name = cc.name_any();
    pending::judged(
        cc,
        ctx.clone(),
        async move |cc: &CallsCluster, _: Option<&Workspace>| {
            let mut status = cc.status.clone().unwrap_or_default();
            let judgement = |health: Health, status| Judgement {
                health,
                status,
                extra_conditions: Vec::new(),
                recheck: None,
            };
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            let key = match secrets.get_opt(&token_secret(&name)).await {
                Ok(secret) => secret.and_then(|s| s.data?.get(KEY).map(|b| b.0.clone())),
                Err(e) => return judgement(Health::failing("ReadFailed", e.to_string()), status),
            };
            let children = children(cc, key.as_deref());
            if let Err(error) = children.apply(&client).await {
                return judgement(Health::failing(error.reason(), error.to_string()), status);
            }
            let kinds = [
                ApiResource::erase::<Deployment>(&()),
                ApiResource::erase::<DaemonSet>(&()),
                ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
                ApiResource::erase::<Secret>(&()),
            ];
            if let Err(error) = children.prune(&ctx, &kinds).await {
                return judgement(Health::failing(error.reason(), error.to_string()), status);
            }
            let (wanted, ready) = if cc.spec.sfu.mode == SfuMode::HostNetwork {
                // As many nodes as the DaemonSet schedules on.
                let daemon_set = Api::<DaemonSet>::namespaced(client.clone(), &namespace)
                    .get_opt(&format!("{name}-sfu"))
                    .await
                    .ok()
                    .flatten()
                    .and_then(|d| d.status);
                daemon_set
                    .map(|s| (s.desired_number_scheduled, s.number_ready))
                    .unwrap_or((0, 0))
            } else {
                let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
                let mut ready = 0;
                for i in 0..nodes(cc) {
                    if let Ok(Some(d)) = deployments.get_opt(&node(&name, i)).await {
                        if d.status.and_then(|s| s.ready_replicas).unwrap_or(0) >= 1 {
                            ready += 1;
                        }
                    }
                }
                (nodes(cc), ready)
            };
            status.nodes = Some(wanted);
            status.ready_nodes = Some(ready);
            status.token_secret = Some(token_secret(&name));
            let missing = not_built(cc);
            let caveat = if missing.is_empty() {
                String::new()
            } else {
                format!("; not built yet: {}", missing.join("; "))
            };
            let health = if ready == wanted && wanted > 0 {
                Health::Ready {
                    message: format!("{ready} of {wanted} SFU nodes ready{caveat}"),
                }
            } else {
                Health::progressing(
                    "NodesStarting",
                    format!("{ready} of {wanted} SFU nodes ready{caveat}"),
                )
            };
            Judgement {
                recheck: (ready < wanted || wanted == 0)
                    .then(|| std::time::Duration::from_secs(30)),
                ..judgement(health, status)
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_and_differ() {
        let (a, b) = (random_key(), random_key());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }
}
