//! `entente status`: what a site `entente up` runs is doing — each
//! workspace server's health and counts and each partner link's state and
//! queue (from the server's admin API, as the operator reads them), each
//! SFU node's load, and whether PostgreSQL runs. It reads what `up` wrote
//! under the data directory and asks the running parts; it starts nothing.

use std::{path::Path, time::Duration};

use entente_crds::{
    config::{MediaConfig, RuntimeConfig},
    render::paths,
};
use entente_proto::admin::{
    admin_client::AdminClient, CountsRequest, FederationRequest, HealthRequest,
};

/// How long each part has to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The report for the site under `data_dir`.
pub async fn status(data_dir: &Path) -> Result<String, String> {
    let workspaces = data_dir.join("workspaces");
    let names = super::site_workspaces(data_dir)?;
    let mut out = String::new();
    for name in names {
        let file = workspaces.join(&name).join(paths::CONFIG_FILE);
        let config = RuntimeConfig::load(&file).map_err(|e| e.to_string())?;
        out.push_str(&workspace(&name, &config).await);
    }
    for node in sfu_configs(&data_dir.join("calls")) {
        out.push_str(&sfu(&node).await);
    }
    out.push_str(&database(data_dir));
    Ok(out)
}

async fn workspace(name: &str, config: &RuntimeConfig) -> String {
    let url = format!("http://{}", config.listen.admin);
    let connected = async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(AdminClient::new(channel))
    }
    .await;
    let mut client = match connected {
        Ok(client) => client,
        Err(_) => {
            return format!(
                "workspace {name:?}: not running (nothing answers on {})\n",
                config.listen.admin
            )
        }
    };
    let mut out = match client.health(HealthRequest {}).await {
        Ok(health) => {
            let health = health.into_inner();
            format!(
                "workspace {name:?}: {} at http://{} (database {}, objects {}; version {})\n",
                if health.ready { "ready" } else { "NOT READY" },
                config.listen.http,
                health.database,
                health.object_storage,
                health.version
            )
        }
        Err(status) => format!(
            "workspace {name:?}: running, health unknown ({})\n",
            status.message()
        ),
    };
    if let Ok(counts) = client.counts(CountsRequest {}).await {
        let counts = counts.into_inner();
        out.push_str(&format!(
            "  {} users ({} guests), {} channels, {} posts, {} files, {} open WebSockets\n",
            counts.users,
            counts.guests,
            counts.channels,
            counts.posts,
            counts.files,
            counts.websocket_connections
        ));
    }
    if let Ok(federation) = client.federation(FederationRequest {}).await {
        for partner in federation.into_inner().partners {
            let link = if partner.connected {
                "connected".to_string()
            } else if partner.last_contact.is_empty() {
                "never reached".to_string()
            } else {
                format!("not connected (last heard {})", partner.last_contact)
            };
            let error = if partner.last_error.is_empty() {
                String::new()
            } else {
                format!("; last error: {}", partner.last_error)
            };
            out.push_str(&format!(
                "  partner {}: {link}; {} events ({} bytes) queued, oldest {} s{error}\n",
                partner.workspace_id,
                partner.queued_events,
                partner.queued_bytes,
                partner.oldest_unacked_seconds
            ));
        }
    }
    out
}

/// Every SFU node config `up` wrote: `calls/<cluster>/node-<i>/media.yaml`.
fn sfu_configs(calls: &Path) -> Vec<(String, MediaConfig)> {
    let mut found = Vec::new();
    for cluster in std::fs::read_dir(calls).into_iter().flatten().flatten() {
        for node in std::fs::read_dir(cluster.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let file = node.path().join("media.yaml");
            if let Ok(config) = MediaConfig::load(&file) {
                let label = format!(
                    "SFU {} of CallsCluster {:?}",
                    node.file_name().to_string_lossy(),
                    cluster.file_name().to_string_lossy()
                );
                found.push((label, config));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

async fn sfu((label, config): &(String, MediaConfig)) -> String {
    let Some(sfu) = &config.sfu else {
        return String::new();
    };
    let answer = tokio::time::timeout(TIMEOUT, super::servers::get_ok(sfu.listen, "/status"))
        .await
        .ok()
        .flatten();
    match answer {
        Some(status) => format!("{label}: running on {}; {}\n", sfu.listen, status.trim()),
        None => format!("{label}: not running (nothing answers on {})\n", sfu.listen),
    }
}

fn database(data_dir: &Path) -> String {
    let root = super::database::root(data_dir);
    match super::database::postmaster(data_dir) {
        Some(pid) => format!(
            "PostgreSQL: running (pid {pid}), data in {}\n",
            root.join("data").display()
        ),
        None if root.exists() => "PostgreSQL: not running\n".into(),
        None => String::new(),
    }
}
