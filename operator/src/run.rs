//! The operator process: flags, start-up checks, the leader Lease, the
//! metrics and health endpoints, and one controller per kind.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{http::StatusCode, routing::get, Router};
use entente_crds::{
    AccessPolicy, Bridge, CallsCluster, GuestPolicy, LanguageModel, LegalHold, PartnerConnection,
    Workspace,
};
use futures_util::FutureExt;
use kube::{api::ApiResource, Client};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::{
    calls,
    leader::LeaseLock,
    models, partners, pending, policies,
    reconcile::{controller, metrics::Metrics, Context, Scope},
    startup, workspace,
};

pub const USAGE: &str = "usage: entente-operator [--metrics-port N] [--health-port N] \
[--watch-namespaces a,b] [--lease-name NAME]\n\
environment: POD_NAMESPACE (where the leader Lease lives), POD_NAME (this replica's identity)";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flags {
    pub metrics_port: u16,
    pub health_port: u16,
    pub scope: Scope,
    pub lease_name: String,
}

pub fn parse(args: &[String]) -> Result<Flags, String> {
    let mut flags = Flags {
        metrics_port: 8080,
        health_port: 8081,
        scope: Scope::Cluster,
        lease_name: "entente-operator".into(),
    };
    for arg in args {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?}: flags take the form --name=value"))?;
        let port = |v: &str| {
            v.parse::<u16>()
                .map_err(|_| format!("{name}: {v:?} is not a port number"))
        };
        match name {
            "--metrics-port" => flags.metrics_port = port(value)?,
            "--health-port" => flags.health_port = port(value)?,
            "--lease-name" if !value.is_empty() => flags.lease_name = value.into(),
            "--watch-namespaces" => {
                let list: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                flags.scope = if list.is_empty() {
                    Scope::Cluster
                } else {
                    Scope::Namespaces(list)
                };
            }
            _ => return Err(format!("unknown flag {name:?}")),
        }
    }
    Ok(flags)
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot find Kubernetes credentials (in-cluster or KUBECONFIG): {0}")]
    Config(String),
    #[error(transparent)]
    Startup(#[from] startup::StartupError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("leader election: {0}")]
    Lease(kube::Error),
    #[error("lost the leader Lease; exiting so a fresh replica can take over")]
    LostLease,
}

pub async fn run(flags: Flags) -> Result<(), RunError> {
    let client = Client::try_default()
        .await
        .map_err(|e| RunError::Config(e.to_string()))?;
    let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("entente-operator-{}", std::process::id()));

    let (ready_tx, ready_rx) = watch::channel(false);
    let health = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = *ready_rx.borrow();
                async move {
                    if ready {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        );
    serve(flags.health_port, health).await?;

    startup::check_crds(&client).await?;
    startup::check_permissions(&client, &startup::checks(&flags.scope, &namespace)).await?;

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let registry = Arc::new(registry);
    let metrics_router = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &registry) {
                    Ok(()) => (StatusCode::OK, text),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            }
        }),
    );
    serve(flags.metrics_port, metrics_router).await?;
    let _ = ready_tx.send(true);

    let lease = LeaseLock::new(
        client.clone(),
        &namespace,
        &flags.lease_name,
        &identity,
        Duration::from_secs(15),
    );
    lease.acquire().await.map_err(RunError::Lease)?;
    tracing::info!(%identity, "leading; starting controllers");

    let ctx = Arc::new(Context::new(client, metrics, namespace, identity));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
        .shared()
    };
    // Watch only the child kinds this cluster serves: without CloudNativePG
    // a watch on its Clusters would fail forever. (A Workspace that needs it
    // reports so in its status.)
    let mut workspace_children = Vec::new();
    for resource in workspace::controller::child_kinds() {
        let served = startup::served_kinds(&ctx.client, &resource.api_version)
            .await
            .map_err(|e| RunError::Startup(e.into()))?;
        if served.contains(&resource.kind) {
            workspace_children.push(resource);
        } else {
            tracing::warn!(kind = %resource.kind, api = %resource.api_version, "not served by this cluster; not watched");
        }
    }
    let scope = &flags.scope;
    let controllers = futures_util::future::join_all([
        controller::run::<Workspace, _, _>(
            ctx.clone(),
            scope,
            workspace_children,
            Some(workspace::controller::secrets_read),
            vec![
                ApiResource::erase::<GuestPolicy>(&()),
                ApiResource::erase::<AccessPolicy>(&()),
                ApiResource::erase::<PartnerConnection>(&()),
                ApiResource::erase::<CallsCluster>(&()),
                ApiResource::erase::<LanguageModel>(&()),
            ],
            workspace::controller::reconcile,
            stop.clone(),
        )
        .boxed(),
        controller::run::<PartnerConnection, _, _>(
            ctx.clone(),
            scope,
            vec![],
            Some(partners::secrets_read),
            vec![],
            partners::reconcile,
            stop.clone(),
        )
        .boxed(),
        controller::run::<GuestPolicy, _, _>(
            ctx.clone(),
            scope,
            vec![],
            None,
            vec![],
            policies::reconcile_guest,
            stop.clone(),
        )
        .boxed(),
        controller::run::<AccessPolicy, _, _>(
            ctx.clone(),
            scope,
            vec![],
            None,
            vec![],
            policies::reconcile_access,
            stop.clone(),
        )
        .boxed(),
        controller::run::<CallsCluster, _, _>(
            ctx.clone(),
            scope,
            vec![
                ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
                ApiResource::erase::<k8s_openapi::api::apps::v1::DaemonSet>(&()),
                ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
                ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
            ],
            None,
            vec![],
            calls::reconcile,
            stop.clone(),
        )
        .boxed(),
        controller::run::<LanguageModel, _, _>(
            ctx.clone(),
            scope,
            vec![
                ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
                ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
                ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
            ],
            None,
            vec![],
            models::reconcile,
            stop.clone(),
        )
        .boxed(),
        controller::run::<Bridge, _, _>(
            ctx.clone(),
            scope,
            vec![],
            None,
            vec![],
            pending::reconcile::<Bridge>,
            stop.clone(),
        )
        .boxed(),
        controller::run::<LegalHold, _, _>(
            ctx.clone(),
            scope,
            vec![],
            None,
            vec![],
            pending::reconcile::<LegalHold>,
            stop.clone(),
        )
        .boxed(),
    ]);
    let signal = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    tokio::pin!(controllers);
    let lost = tokio::select! {
        _ = &mut controllers => false,
        _ = signal => { tracing::info!("stopping"); false }
        _ = lease.hold() => true,
    };
    let _ = stop_tx.send(true);
    controllers.await;
    if lost {
        Err(RunError::LostLease)
    } else {
        Ok(())
    }
}

async fn serve(port: u16, router: Router) -> Result<(), RunError> {
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Listen { addr, source })?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "HTTP endpoint stopped");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn chart_flags_parse() {
        let flags = parse(&args(&[
            "--metrics-port=9000",
            "--health-port=9001",
            "--watch-namespaces=a, b",
        ]))
        .unwrap();
        assert_eq!(flags.metrics_port, 9000);
        assert_eq!(flags.scope, Scope::Namespaces(vec!["a".into(), "b".into()]));
        assert_eq!(parse(&[]).unwrap().scope, Scope::Cluster);
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        assert!(parse(&args(&["--metrics-port=x"]))
            .unwrap_err()
            .contains("not a port"));
        assert!(parse(&args(&["--nope=1"]))
            .unwrap_err()
            .contains("unknown flag"));
        assert!(parse(&args(&["--metrics-port"]))
            .unwrap_err()
            .contains("--name=value"));
    }
}
