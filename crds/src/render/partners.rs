//! PartnerConnections rendered into their Workspace's RuntimeConfig: each
//! one decided (its own spec, its CA bundle, no conflict with another of the
//! same workspace), then the ones that can be rendered put into
//! `federation.partners` with their CA bundles as files beside the config.
//!
//! The server applies `federation.partners` live, without a restart. Two
//! PartnerConnections of one Workspace for the same partner workspace would
//! give the partner two sets of rights: the older one is rendered, the newer
//! is refused until one goes.

use std::path::Path;

use k8s_openapi::{api::core::v1::Secret, ByteString};
use kube::ResourceExt;

use super::quantity;
use crate::{
    config::{PartnerConfig, RuntimeConfig, SharedChannelConfig, SyncConfig},
    partner_connection::ShareMode,
    PartnerConnection, Workspace,
};

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
pub fn conflict(
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
