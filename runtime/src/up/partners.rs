//! PartnerConnections under `entente up`: rendered by the operator's own
//! code ([`render::partners`]), with each partner's CA bundle read from a
//! file where a pod would find its Secret mounted
//! ([`LocalWorkspace::secret_file`]). A partner whose bundle is missing or
//! wrong is left out, and `up` says where to put it, as the operator leaves
//! it out and says so in its status.

use std::collections::BTreeMap;

use entente_crds::{render, PartnerConnection};
use k8s_openapi::{api::core::v1::Secret, ByteString};

use super::plan::LocalWorkspace;

/// The PartnerConnections of `local`.
fn of<'p>(
    local: &LocalWorkspace,
    partners: &'p [PartnerConnection],
) -> impl Iterator<Item = &'p PartnerConnection> {
    let name = local.name();
    partners
        .iter()
        .filter(move |p| p.spec.workspace_ref == name)
}

/// The Secrets the PartnerConnections of `local` name, as far as their
/// files exist.
pub fn secrets(local: &LocalWorkspace, partners: &[PartnerConnection]) -> Vec<Secret> {
    let mut secrets: BTreeMap<String, BTreeMap<String, ByteString>> = BTreeMap::new();
    for partner in of(local, partners) {
        let bundle = &partner.spec.partner.ca_bundle;
        if let Ok(bytes) = std::fs::read(local.secret_file(&bundle.name, &bundle.key)) {
            secrets
                .entry(bundle.name.clone())
                .or_default()
                .insert(bundle.key.clone(), ByteString(bytes));
        }
    }
    secrets
        .into_iter()
        .map(|(name, data)| Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        })
        .collect()
}

/// One partner link of a workspace, as `up` reports it.
pub struct Link {
    pub partner: String,
    pub endpoint: String,
    /// The channels shared, or why the partner is left out.
    pub shared: Result<Vec<String>, String>,
}

/// What becomes of each PartnerConnection of `local` (whose id is `own_id`).
pub fn links(
    local: &LocalWorkspace,
    own_id: &str,
    partners: &[PartnerConnection],
    secrets: &[Secret],
) -> Vec<Link> {
    let decisions = render::partners::decide(
        &local.workspace,
        own_id,
        partners,
        |name| {
            secrets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
        },
        &local.placement.config_dir,
    );
    decisions
        .into_iter()
        .map(|decision| {
            let spec = &decision.partner.spec;
            let bundle = &spec.partner.ca_bundle;
            let file = local.secret_file(&bundle.name, &bundle.key);
            let shared = match decision.rendered {
                Ok((config, _)) => Ok(config.channels.into_iter().map(|c| c.name).collect()),
                Err(_) if !file.is_file() => Err(format!(
                    "put {}'s CA bundle (Secret {:?} key {:?} in a cluster) in {} and run again",
                    spec.partner.workspace_id,
                    bundle.name,
                    bundle.key,
                    file.display()
                )),
                Err(why) => Err(why),
            };
            Link {
                partner: spec.partner.workspace_id.clone(),
                endpoint: spec.partner.endpoint.clone(),
                shared,
            }
        })
        .collect()
}
