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
//! token lifetime) and the key beside its config
//! ([`entente_crds::render::calls`]).
//!
//! The children are built by the pure, typed builders in [`build`].
//!
//! In `mode: HostNetwork` a DaemonSet runs one SFU pod per selected node on
//! the node's own network; the servers reach each by its address.
//!
//! With `tcpFallback`, each node also serves TURN over TCP on `tcpPort`, for
//! clients whose UDP is blocked.
//!
//! Not built yet, and said so in status: TURN credentials for configured
//! ICE servers, and the offloader.

use std::sync::Arc;

use entente_crds::{calls_cluster::SfuMode, CallsCluster, Workspace};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment},
    core::v1::{Pod, Secret},
};
use kube::{api::ApiResource, runtime::controller::Action, Api, ResourceExt};

use crate::{
    labels,
    reconcile::{
        judged::{judged, Judgement},
        Context, Error, Health,
    },
};

pub mod build;

pub(crate) const COMPONENT: &str = "sfu";
/// Where an SFU pod serves signalling, `/status` and `/metrics`.
pub const SIGNALLING_PORT: u16 = 7880;
pub(crate) const KEY: &str = "key";
pub(crate) const CONFIG_MOUNT: &str = "/etc/entente/media";

pub fn token_secret(cc: &str) -> String {
    format!("{cc}-join-token")
}

pub(crate) fn config_secret(cc: &str) -> String {
    format!("{cc}-sfu-config")
}

pub(crate) fn node(cc: &str, i: i32) -> String {
    format!("{cc}-sfu-{i}")
}

pub(crate) fn nodes(cc: &CallsCluster) -> i32 {
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

/// 48 random alphanumerics (~285 bits).
pub(crate) fn random_key() -> String {
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
    judged(
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
            let children = build::children(cc, key.as_deref());
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
