//! The PartnerConnection controller: checks each one against its Workspace
//! and its CA Secret, and copies the server's figures for the link into
//! status. What a PartnerConnection renders into its Workspace's config is
//! [`entente_crds::render::partners`], shared with `entente up`.
//!
//! The partner's CA bundle is copied from the Secret the spec names into the
//! workspace's runtime Secret, beside the config (`partner-<id>-ca.crt`), so
//! a new partner or a rotated CA reaches the running pods through the
//! mounted Secret with no rollout. Of two PartnerConnections of one
//! Workspace for the same partner workspace, the newer is `Stalled` until
//! one goes.

use std::{path::Path, sync::Arc, time::Duration};

use entente_crds::{
    partner_connection::PartnerConnectionStatus,
    render::partners::{ca_bundle, conflict, partner_config, Bundle},
    PartnerConnection, Workspace,
};
use entente_proto::admin::PartnerFigures;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{runtime::controller::Action, Api, ResourceExt};

use crate::{
    admin,
    reconcile::{
        judged::{judged, Judgement},
        Context, Error, Health,
    },
};

/// The Secret a PartnerConnection reads (watched: a rotated CA bundle is
/// checked, and rendered, at once).
pub fn secrets_read(partner: &PartnerConnection) -> Vec<String> {
    vec![partner.spec.partner.ca_bundle.name.clone()]
}

/// How often the server's figures are copied into status.
pub const FIGURES_EVERY: Duration = Duration::from_secs(30);

/// The link's health from the server's figures for it.
fn link_health(
    figures: &PartnerFigures,
    partner: &PartnerConnection,
    bundle: &Bundle,
    status: &mut PartnerConnectionStatus,
) -> (Health, Vec<(&'static str, bool, String, String)>) {
    status.last_contact = figures
        .last_contact
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(Time);
    status.queued_events = Some(figures.queued_events);
    status.queued_bytes = Some(figures.queued_bytes);
    status.lag_seconds = Some(figures.oldest_unacked_seconds);
    status.rejected_events = Some(figures.rejected_events);
    let connected = if figures.suspended {
        (
            "Connected",
            false,
            "Suspended".into(),
            "spec.suspended is true: nothing is exchanged; the queue keeps filling".into(),
        )
    } else if figures.connected {
        (
            "Connected",
            true,
            "Connected".into(),
            format!("the partner answered at {}", figures.last_contact),
        )
    } else {
        let why = if figures.last_error.is_empty() {
            "not heard from within the keepalive interval".to_string()
        } else {
            figures.last_error.clone()
        };
        (
            "Connected",
            false,
            "Unreachable".into(),
            format!("{why}; retrying with backoff, nothing is lost"),
        )
    };
    let synced = if figures.queued_events == 0 {
        (
            "Synced",
            true,
            "QueueEmpty".into(),
            "the partner acknowledged every event".into(),
        )
    } else {
        (
            "Synced",
            false,
            "Behind".into(),
            format!(
                "{} events ({} bytes) not yet acknowledged, the oldest {} s old",
                figures.queued_events, figures.queued_bytes, figures.oldest_unacked_seconds
            ),
        )
    };
    let health = if figures.queue_full {
        Health::failing(
            "QueueFull",
            format!(
                "the queue for {:?} is over spec.sync.maxQueuedEvents or maxQueuedBytes ({} events, {} bytes); every event is kept ({:?})",
                partner.spec.partner.workspace_id,
                figures.queued_events,
                figures.queued_bytes,
                partner.spec.sync.when_queue_full
            ),
        )
    } else {
        Health::Ready {
            message: format!(
                "rendered into its Workspace; sharing {} channel(s) with {:?}; {}",
                partner.spec.channels.len(),
                partner.spec.partner.organisation,
                bundle.summary
            ),
        }
    };
    (health, vec![connected, synced])
}

/// Checks `partner` against its Workspace and its CA Secret, then copies the
/// server's figures for the link. A server that does not answer leaves the
/// figures as they were and says so; one that answers without the partner
/// has not loaded it yet (`Progressing`).
pub async fn reconcile(
    partner: Arc<PartnerConnection>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let client = ctx.client.clone();
    let addresses = ctx.admin.clone();
    let namespace = partner.namespace().unwrap_or_default();
    let secret_name = partner.spec.partner.ca_bundle.name.clone();
    let secret = Api::<Secret>::namespaced(client.clone(), &namespace)
        .get_opt(&secret_name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Secret {secret_name:?}"),
            source: Box::new(source),
        })?;
    let all = Api::<PartnerConnection>::namespaced(client, &namespace)
        .list(&Default::default())
        .await
        .map_err(|source| Error::Read {
            what: "the PartnerConnections".into(),
            source: Box::new(source),
        })?
        .items;
    judged(
        partner,
        ctx,
        async move |partner: &PartnerConnection, workspace: Option<&Workspace>| {
            let mut status = partner.status.clone().unwrap_or_default();
            let stalled = |reason: &str, message: String| Judgement {
                health: Health::stalled(reason, message),
                status: status.clone(),
                extra_conditions: Vec::new(),
                recheck: None,
            };
            let Some(workspace) = workspace else {
                return stalled("InvalidSpec", "spec.workspaceRef is required".into());
            };
            if let Some(why) = conflict(partner, &workspace.name_any(), &all) {
                return stalled("Conflict", why);
            }
            let bundle = match ca_bundle(partner, secret.as_ref()) {
                Ok(bundle) => bundle,
                Err(why) => return stalled("CABundleInvalid", why),
            };
            if let Err(why) = partner_config(partner, Path::new("")) {
                return stalled("InvalidSpec", why);
            }
            let (health, extra_conditions) = match admin::federation(&addresses, workspace).await {
                Ok(reply) => match reply
                    .partners
                    .iter()
                    .find(|f| f.workspace_id == partner.spec.partner.workspace_id)
                {
                    Some(figures) => link_health(figures, partner, &bundle, &mut status),
                    None => (
                        Health::progressing(
                            "ServerLoading",
                            format!(
                                "rendered into its Workspace; the server has not loaded it yet; {}",
                                bundle.summary
                            ),
                        ),
                        Vec::new(),
                    ),
                },
                Err(why) => (
                    Health::Ready {
                        message: format!(
                            "rendered into its Workspace; {}; figures not updated: {why}",
                            bundle.summary
                        ),
                    },
                    Vec::new(),
                ),
            };
            Judgement {
                health,
                status,
                extra_conditions,
                recheck: Some(FIGURES_EVERY),
            }
        },
    )
    .await
}
