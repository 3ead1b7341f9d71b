//! The operator's side of a workspace server's admin gRPC API: figures the
//! server alone knows (guests, access decisions, federation links) for the status of the
//! resources that configure them.
//!
//! The server is reached at its admin Service (cluster DNS), which its
//! NetworkPolicy opens to the operator's namespace alone. A server that does
//! not answer within [`TIMEOUT`] leaves the figures out of status; it never
//! fails a reconcile.

use std::time::Duration;

use entente_crds::Workspace;
use entente_proto::admin::{
    admin_client::AdminClient, AccessReply, AccessRequest, FederationReply, FederationRequest,
};
use kube::ResourceExt;
use tonic::transport::{Channel, Endpoint};

use crate::workspace::layout::{Names, ADMIN_PORT};

/// How long to wait for a server, connecting and answering each.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Where workspaces' admin APIs are.
#[derive(Debug, Clone, Default)]
pub enum Addresses {
    /// `http://<workspace>-admin.<namespace>.svc:9090`, inside the cluster.
    #[default]
    ClusterDns,
    /// One server at this URL, whatever the workspace: for `entente up`
    /// and tests, where there is one server and no cluster DNS.
    Fixed(String),
}

impl Addresses {
    pub fn of(&self, workspace: &Workspace) -> String {
        match self {
            Addresses::ClusterDns => format!(
                "http://{}.{}.svc:{ADMIN_PORT}",
                Names::of(workspace).admin_service(),
                workspace.namespace().unwrap_or_default()
            ),
            Addresses::Fixed(url) => url.clone(),
        }
    }
}

/// A client of `workspace`'s admin API, and its URL for messages.
async fn client(
    addresses: &Addresses,
    workspace: &Workspace,
) -> Result<(AdminClient<Channel>, String), String> {
    let url = addresses.of(workspace);
    let channel = Endpoint::from_shared(url.clone())
        .map_err(|e| format!("admin API {url}: {e}"))?
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("admin API {url}: {e}"))?;
    Ok((AdminClient::new(channel), url))
}

/// The access figures of `workspace`'s server, or why there are none.
pub async fn access(addresses: &Addresses, workspace: &Workspace) -> Result<AccessReply, String> {
    let (mut admin, url) = client(addresses, workspace).await?;
    admin
        .access(AccessRequest {})
        .await
        .map(|reply| reply.into_inner())
        .map_err(|status| format!("admin API {url}: {}", status.message()))
}

/// The per-partner federation figures of `workspace`'s server, or why
/// there are none.
pub async fn federation(
    addresses: &Addresses,
    workspace: &Workspace,
) -> Result<FederationReply, String> {
    let (mut admin, url) = client(addresses, workspace).await?;
    admin
        .federation(FederationRequest {})
        .await
        .map(|reply| reply.into_inner())
        .map_err(|status| format!("admin API {url}: {}", status.message()))
}
