//! The one renderer of a workspace server's [`RuntimeConfig`], used by the
//! operator (for a pod) and by `entente up` (for a local process).
//!
//! [`render`] takes a Workspace, where its server runs ([`Placement`]), and
//! what is attached to it ([`Attached`]: its GuestPolicies and
//! AccessPolicies, its PartnerConnections with their CA Secrets, its
//! CallsCluster with the SFU nodes and the join-token key), and returns the
//! config and the files to put beside it. Pure: no API calls, no files.
//!
//! Also here, because both places need them: the secret files' layout
//! ([`paths`]), the federation certificates ([`certs`]), and Kubernetes
//! quantities ([`quantity`]).

pub mod ai;
pub mod calls;
pub mod certs;
pub mod partners;
pub mod paths;
pub mod policies;
pub mod quantity;
pub mod runtime_config;
pub mod translation;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::{
    config::{Listen, RuntimeConfig},
    AccessPolicy, CallsCluster, GuestPolicy, LanguageModel, PartnerConnection, Workspace,
};

/// Where a workspace's server runs: the one thing that differs between a
/// pod the operator makes and a process `entente up` starts. Everything
/// else in the RuntimeConfig comes from the Workspace and what is attached
/// to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub listen: Listen,
    /// The directory holding the secret files, as `<dir>/<file>` below it
    /// (the layout of [`paths`]).
    pub secrets_dir: PathBuf,
    /// The directory holding the config and the files rendered beside it
    /// (partners' CA bundles, the calls key).
    pub config_dir: PathBuf,
}

impl Placement {
    /// A server pod: every port on all interfaces, secrets and config where
    /// the Deployment mounts them.
    pub fn pod() -> Placement {
        let all = |port: u16| std::net::SocketAddr::from(([0, 0, 0, 0], port));
        Placement {
            listen: Listen {
                http: all(paths::HTTP_PORT),
                federation: all(paths::FEDERATION_PORT),
                admin: all(paths::ADMIN_PORT),
                metrics: Some(all(paths::METRICS_PORT)),
            },
            secrets_dir: PathBuf::from(paths::SECRETS_DIR),
            config_dir: PathBuf::from(paths::CONFIG_DIR),
        }
    }

    /// Where the secret `(dir, file)` is.
    pub fn secret(&self, (dir, file): (&str, &str)) -> PathBuf {
        self.secrets_dir.join(dir).join(file)
    }
}

/// What is attached to a Workspace besides its own spec. Each list may hold
/// objects for other workspaces: only those naming this one (in its
/// namespace) are rendered.
#[derive(Clone, Copy)]
pub struct Attached<'a> {
    pub guest_policies: &'a [GuestPolicy],
    pub access_policies: &'a [AccessPolicy],
    pub partners: &'a [PartnerConnection],
    /// The Secrets the partners' CA bundles are read from, by name.
    pub secret: &'a dyn Fn(&str) -> Option<&'a Secret>,
    /// The CallsCluster `spec.features.calls` names and its nodes'
    /// signalling URLs, if it exists.
    pub calls: Option<(&'a CallsCluster, &'a [String])>,
    /// The join-token key, once the CallsCluster has made it.
    pub calls_key: Option<&'a [u8]>,
    /// The LanguageModel `spec.features.ai` names, if it exists, and its
    /// API key once read.
    pub language_model: Option<(&'a LanguageModel, Option<&'a [u8]>)>,
    /// The Apertium service `entente up` runs, for a provider naming none.
    pub apertium_url: Option<&'a str>,
    /// The LibreTranslate key, once read.
    pub translation_key: Option<&'a [u8]>,
}

impl<'a> Attached<'a> {
    /// Nothing attached: the Workspace's own spec only.
    pub fn none() -> Attached<'a> {
        Attached {
            guest_policies: &[],
            access_policies: &[],
            partners: &[],
            secret: &|_| None,
            calls: None,
            calls_key: None,
            language_model: None,
            apertium_url: None,
            translation_key: None,
        }
    }
}

/// A rendered config and the files (name, contents) to put beside it in
/// [`Placement::config_dir`].
#[derive(Clone, Debug)]
pub struct Rendered {
    pub config: RuntimeConfig,
    pub files: Vec<(String, Vec<u8>)>,
}

/// Why a Workspace cannot be rendered; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Workspace {workspace:?}: {field}: {message}")]
pub struct RenderError {
    pub workspace: String,
    pub field: &'static str,
    pub message: String,
}

/// The config of `workspace`'s server at `placement`. A policy or partner
/// that cannot be rendered is left out (its own controller, or `entente up
/// --check`, says why); only the Workspace's own spec can fail the whole.
pub fn render(
    workspace: &Workspace,
    placement: &Placement,
    attached: Attached<'_>,
) -> Result<Rendered, RenderError> {
    let mut config = runtime_config::build(workspace, placement)?;
    policies::attach(
        &mut config,
        workspace,
        attached.guest_policies,
        attached.access_policies,
    );
    let decisions = partners::decide(
        workspace,
        &config.workspace.id,
        attached.partners,
        attached.secret,
        &placement.config_dir,
    );
    let mut files = partners::attach(&mut config, decisions);
    files.extend(calls::attach(
        &mut config,
        workspace,
        attached.calls,
        attached.calls_key,
        &placement.config_dir,
    ));
    files.extend(ai::attach(
        &mut config,
        workspace,
        attached.language_model,
        &placement.config_dir,
    ));
    // After the model: translation through it needs it rendered.
    files.extend(translation::attach(
        &mut config,
        workspace,
        attached.apertium_url,
        attached.translation_key,
        &placement.config_dir,
    ));
    Ok(Rendered { config, files })
}

/// The name partners expect in this workspace's federation certificate.
pub fn federation_identity(workspace: &Workspace) -> String {
    workspace
        .spec
        .federation
        .identity
        .clone()
        .unwrap_or_else(|| match workspace.namespace() {
            Some(namespace) if !namespace.is_empty() => {
                format!("{}.{namespace}.entente.local", workspace.name_any())
            }
            // `entente up` has no namespaces.
            _ => format!("{}.entente.local", workspace.name_any()),
        })
}
