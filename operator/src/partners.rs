//! PartnerConnection: rendered into its Workspace's RuntimeConfig (the
//! server applies `federation.partners` live, without a restart), checked by
//! its own controller, which copies the server's figures for the link into
//! status.
//!
//! The partner's CA bundle is copied from the Secret the spec names into the
//! workspace's runtime Secret, beside the config (`partner-<id>-ca.crt`), so
//! a new partner or a rotated CA reaches the running pods through the
//! mounted Secret with no rollout.
//!
//! Two PartnerConnections of one Workspace for the same partner workspace
//! would give the partner two sets of rights: the older one is rendered, the
//! newer is `Stalled` until one goes.

use std::{path::Path, sync::Arc, time::Duration};

use entente_crds::{
    config::{PartnerConfig, RuntimeConfig, SharedChannelConfig, SyncConfig},
    partner_connection::{PartnerConnectionStatus, ShareMode},
    PartnerConnection, Workspace,
};
use entente_proto::admin::PartnerFigures;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time, ByteString};
use kube::{runtime::controller::Action, Api, ResourceExt};

use crate::{
    admin,
    pending::{self, Judgement},
    quantity,
    reconcile::{Context, Error, Health},
};

/// The Secret a PartnerConnection reads (watched: a rotated CA bundle is
/// checked, and rendered, at once).
pub fn secrets_read(partner: &PartnerConnection) -> Vec<String> {
    vec![partner.spec.partner.ca_bundle.name.clone()]
}

/// How often the server's figures are copied into status.
pub const FIGURES_EVERY: Duration = Duration::from_secs(30);

/// The file, beside the config, holding the CA bundle of `partner`.
pub fn ca_file_name(partner: &PartnerConnection) -> String {
    format!("partner-{}-ca.crt", partner.spec.partner.workspace_id)
}

/// A PartnerConnection as the server reads it, trusting the CA bundle at
/// `ca_file`; or what in the spec is wrong.
pub fn partner_config(
    partner: &PartnerConnection,
    ca_file: &Path,
) -> Result<PartnerConfig, String> {
    let spec = &partner.spec;
    let mut channels: Vec<SharedChannelConfig> = Vec::new();
    for (i, share) in spec.channels.iter().enumerate() {
        let remote_name = share.remote_name.clone().unwrap_or(share.name.clone());
        if let Some(other) = channels
            .iter()
            .find(|c| c.remote_name == remote_name || c.name == share.name)
        {
            return Err(format!(
                "spec.channels[{i}]: {:?} (the partner's {remote_name:?}) overlaps the share of {:?}; a channel is shared once",
                share.name, other.name
            ));
        }
        let writable = share.mode == ShareMode::ReadWrite;
        let allowed = |narrowed: Option<bool>| writable && narrowed.unwrap_or(true);
        channels.push(SharedChannelConfig {
            name: share.name.clone(),
            remote_name,
            mode: share.mode,
            post: allowed(share.permissions.post),
            react: allowed(share.permissions.react),
            upload_files: allowed(share.permissions.upload_files),
        });
    }
    let sync = &spec.sync;
    let bytes = |field: &str, text: &str| {
        quantity::bytes(text).map_err(|message| format!("spec.sync.{field}: {message}"))
    };
    Ok(PartnerConfig {
        workspace_id: spec.partner.workspace_id.clone(),
        organisation: spec.partner.organisation.clone(),
        endpoint: spec.partner.endpoint.clone(),
        ca_file: ca_file.to_path_buf(),
        identity: spec.partner.identity.clone(),
        channels,
        sync: SyncConfig {
            max_queued_events: sync.max_queued_events.max(1) as u64,
            max_queued_bytes: bytes("maxQueuedBytes", &sync.max_queued_bytes)?,
            when_queue_full: sync.when_queue_full,
            bandwidth_bytes_per_second: sync
                .bandwidth_limit
                .as_deref()
                .map(|limit| bytes("bandwidthLimit", limit))
                .transpose()?,
            max_file_bytes: bytes("maxFileSize", &sync.max_file_size)?,
            keepalive_seconds: sync.keepalive_seconds.max(1) as u32,
            max_backoff_seconds: sync.max_backoff_seconds.max(1) as u32,
            compression: sync.compression,
        },
        allow_relay: spec.allow_relay,
        suspended: spec.suspended,
    })
}

/// A CA bundle, checked: its bytes, and a summary for status.
pub struct Bundle {
    pub pem: Vec<u8>,
    /// How many certificates, valid until when (the earliest expiry). It is
    /// in the Ready message, so a rotated bundle changes the status, and
    /// that change wakes the Workspace, which renders the new bundle.
    pub summary: String,
}

/// The CA bundle `partner` names, checked: PEM holding at least one
/// certificate, every block of it a certificate.
pub fn ca_bundle(partner: &PartnerConnection, secret: Option<&Secret>) -> Result<Bundle, String> {
    let reference = &partner.spec.partner.ca_bundle;
    let field = "spec.partner.caBundle";
    let secret = secret.ok_or_else(|| {
        format!(
            "Secret {:?} ({field}) not found in namespace {:?}",
            reference.name,
            partner.namespace().unwrap_or_default()
        )
    })?;
    let Some(ByteString(bytes)) = secret.data.as_ref().and_then(|d| d.get(&reference.key)) else {
        return Err(format!(
            "Secret {:?} ({field}) has no key {:?}",
            reference.name, reference.key
        ));
    };
    let mut certificates = 0;
    let mut earliest_expiry: Option<String> = None;
    for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| {
            format!(
                "Secret {:?} key {:?} ({field}) is not PEM: {e}",
                reference.name, reference.key
            )
        })?;
        let not_after = match pem.parse_x509() {
            Ok(certificate) if pem.label == "CERTIFICATE" => certificate.validity().not_after,
            _ => {
                return Err(format!(
                    "Secret {:?} key {:?} ({field}) holds a {:?} block that is not an X.509 certificate; a CA bundle holds certificates only",
                    reference.name, reference.key, pem.label
                ))
            }
        };
        let not_after = not_after
            .to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        if earliest_expiry.as_ref().is_none_or(|e| &not_after < e) {
            earliest_expiry = Some(not_after);
        }
        certificates += 1;
    }
    if certificates == 0 {
        return Err(format!(
            "Secret {:?} key {:?} ({field}) holds no PEM certificate",
            reference.name, reference.key
        ));
    }
    Ok(Bundle {
        pem: bytes.clone(),
        summary: format!(
            "trusting {certificates} CA certificate(s) from Secret {:?}, valid until {}",
            reference.name,
            earliest_expiry.unwrap_or_default()
        ),
    })
}

/// Why `partner` cannot be one of `workspace`'s partners besides its own
/// spec: it names the workspace itself, or an older PartnerConnection of
/// the same workspace already trusts that partner.
fn conflict(
    partner: &PartnerConnection,
    own_id: &str,
    all: &[PartnerConnection],
) -> Option<String> {
    let id = &partner.spec.partner.workspace_id;
    if id == own_id {
        return Some(format!(
            "spec.partner.workspaceId {id:?} is this workspace's own id"
        ));
    }
    let age = |p: &PartnerConnection| (p.creation_timestamp().map(|t| t.0), p.name_any());
    all.iter()
        .filter(|other| {
            other.namespace() == partner.namespace()
                && other.spec.workspace_ref == partner.spec.workspace_ref
                && &other.spec.partner.workspace_id == id
                && other.name_any() != partner.name_any()
        })
        .find(|other| age(other) < age(partner))
        .map(|older| {
            format!(
                "PartnerConnection {:?} already connects this workspace to {id:?}; delete one of them",
                older.name_any()
            )
        })
}

/// One PartnerConnection of a workspace, ready to render or refused.
pub struct Decision<'p> {
    pub partner: &'p PartnerConnection,
    /// The config and the CA file's contents, or why it is left out.
    pub rendered: Result<(PartnerConfig, Vec<u8>), String>,
}

/// Decides each PartnerConnection in `all` naming `workspace`, with its CA
/// Secret from `secret` (by name), and `config_dir` where the pods find the
/// files of the runtime Secret.
pub fn decide<'p>(
    workspace: &Workspace,
    own_id: &str,
    all: &'p [PartnerConnection],
    secret: impl Fn(&str) -> Option<&'p Secret>,
    config_dir: &Path,
) -> Vec<Decision<'p>> {
    let mut mine: Vec<&PartnerConnection> = all
        .iter()
        .filter(|p| {
            p.namespace() == workspace.namespace() && p.spec.workspace_ref == workspace.name_any()
        })
        .collect();
    mine.sort_by_key(|p| p.name_any());
    mine.into_iter()
        .map(|partner| Decision {
            partner,
            rendered: match conflict(partner, own_id, all) {
                Some(why) => Err(why),
                None => ca_bundle(partner, secret(&partner.spec.partner.ca_bundle.name)).and_then(
                    |ca| {
                        let config =
                            partner_config(partner, &config_dir.join(ca_file_name(partner)))?;
                        Ok((config, ca.pem))
                    },
                ),
            },
        })
        .collect()
}

/// Puts the partners that can be rendered into `config`; returns the files
/// (name, contents) to put beside it. Those left out say why in their own
/// status.
pub fn attach(config: &mut RuntimeConfig, decisions: Vec<Decision<'_>>) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    config.federation.partners = decisions
        .into_iter()
        .filter_map(|d| {
            let (partner, ca) = d.rendered.ok()?;
            files.push((ca_file_name(d.partner), ca));
            Some(partner)
        })
        .collect();
    files
}

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
    pending::judged(
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
