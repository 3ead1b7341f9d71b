//! What `entente up` will run for a set of manifests: pure, so `--check`
//! prints exactly what a real start would do.

use std::path::{Path, PathBuf};

use entente_crds::config::Listen;
use entente_crds::render::{paths, policies::access_problem, Placement};
use entente_crds::{
    validate::Resource, AccessPolicy, CallsCluster, GuestPolicy, LanguageModel, PartnerConnection,
    Workspace,
};

/// One workspace server to run.
#[derive(Clone, Debug)]
pub struct LocalWorkspace {
    /// The manifest's Workspace, pointed at the local database and objects.
    pub workspace: Workspace,
    pub placement: Placement,
    /// `<data>/workspaces/<name>`: its config, secrets and log.
    pub dir: PathBuf,
    /// Secret files the manifest needs that `up` cannot make (an OIDC client
    /// secret, SAML metadata): the user puts them here.
    pub provided: Vec<Provided>,
}

/// A secret file the user provides, and the Secret key it holds in a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provided {
    /// `(dir, file)` below the secrets directory ([`paths`]).
    pub place: (&'static str, &'static str),
    pub secret: String,
    pub key: String,
}

impl Provided {
    /// The secret files of `workspace` that `up` cannot make.
    fn of(workspace: &Workspace) -> Vec<Provided> {
        let identity = &workspace.spec.identity;
        let oidc = identity.oidc.as_ref().map(|oidc| Provided {
            place: paths::OIDC_CLIENT_SECRET,
            secret: oidc.client_secret.name.clone(),
            key: oidc.client_secret.key.clone(),
        });
        let saml = identity
            .saml
            .as_ref()
            .and_then(|saml| saml.metadata_secret.as_ref())
            .map(|metadata| Provided {
                place: paths::SAML_METADATA,
                secret: metadata.name.clone(),
                key: metadata.key.clone(),
            });
        oidc.into_iter().chain(saml).collect()
    }
}

/// The database of Workspace `workspace` in the cluster `entente up` runs.
pub fn database_name(workspace: &str) -> String {
    format!("entente_{}", workspace.replace('-', "_"))
}

impl LocalWorkspace {
    pub fn name(&self) -> String {
        self.workspace.metadata.name.clone().unwrap_or_default()
    }

    pub fn config_file(&self) -> PathBuf {
        self.placement.config_dir.join(paths::CONFIG_FILE)
    }

    pub fn database(&self) -> String {
        database_name(&self.name())
    }

    /// Where `up` reads key `key` of the Secret `secret` a manifest names
    /// (a partner's CA bundle): `secrets/<secret>/<key>`, as a Secret
    /// mounted in a pod would be.
    pub fn secret_file(&self, secret: &str, key: &str) -> PathBuf {
        self.placement.secrets_dir.join(secret).join(key)
    }

    /// This workspace's federation CA: what its partners trust.
    pub fn federation_ca(&self) -> PathBuf {
        self.dir.join("federation-ca").join("ca.crt")
    }
}

/// The SFU nodes of one CallsCluster, each an `entente-sfu` process.
#[derive(Clone, Debug)]
pub struct LocalCalls {
    pub cluster: CallsCluster,
    /// `<data>/calls/<name>`: its join-token key, and each node's config and log.
    pub dir: PathBuf,
    /// Each node's signalling address; node `i`'s media ports are the
    /// spec's plus `i`.
    pub nodes: Vec<std::net::SocketAddr>,
}

impl LocalCalls {
    pub fn name(&self) -> String {
        self.cluster.metadata.name.clone().unwrap_or_default()
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.join("join-token.key")
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    /// The MediaConfig of node `i`, as the operator renders one for a pod.
    pub fn media_config(&self, i: usize) -> entente_crds::config::MediaConfig {
        entente_crds::render::calls::media_config(
            &self.cluster,
            self.key_file(),
            self.nodes[i],
            i as u16,
        )
    }

    /// The signalling URL of each node, as the workspace servers reach it.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("http://{n}")).collect()
    }
}

/// A LanguageModel on this machine: a model server `up` runs (llama.cpp's,
/// from xllamacpp, serving `spec.selfHosted.localModel`), or an external
/// endpoint it only points the servers at.
#[derive(Clone, Debug)]
pub struct LocalModel {
    /// As declared, with `status.endpoint` where the servers reach it.
    pub model: LanguageModel,
    /// `<data>/models/<name>`: its key and log.
    pub dir: PathBuf,
    /// Where the model server listens; `None` for an external endpoint.
    pub listen: Option<std::net::SocketAddr>,
}

impl LocalModel {
    pub fn name(&self) -> String {
        self.model.metadata.name.clone().unwrap_or_default()
    }

    /// The file holding the API key: made once for a model server `up`
    /// runs; for an external endpoint, the user's copy of the Secret key
    /// the spec names.
    pub fn key_file(&self) -> Option<PathBuf> {
        let name = self.name();
        let key = entente_crds::render::ai::api_key_secret(&self.model, &name)?;
        Some(match &self.listen {
            Some(_) => self.dir.join("api-key"),
            None => self.dir.join(key.name).join(key.key),
        })
    }
}

/// Where file contents go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Objects {
    /// An S3 endpoint `up` serves over the data directory.
    Local { port: u16 },
    /// An S3 store of the user's (`--s3-endpoint`), credentials from the
    /// environment.
    Given { endpoint: String },
}

impl Objects {
    pub fn endpoint(&self) -> String {
        match self {
            Objects::Local { port } => format!("http://127.0.0.1:{port}"),
            Objects::Given { endpoint } => endpoint.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub workspaces: Vec<LocalWorkspace>,
    /// Declared but not run, each with the reason.
    pub not_run: Vec<String>,
    pub objects: Objects,
    /// Everything `up` keeps lives below it.
    pub data_dir: PathBuf,
    /// Rendered into the config of the Workspace each names, as the operator does.
    pub guest_policies: Vec<GuestPolicy>,
    pub access_policies: Vec<AccessPolicy>,
    /// Rendered into the config of the Workspace each names, as the
    /// operator does; each partner's CA bundle is read from
    /// [`LocalWorkspace::secret_file`].
    pub partners: Vec<PartnerConnection>,
    /// The SFUs to start; a Workspace's `spec.features.calls` names one.
    pub calls: Vec<LocalCalls>,
    /// The language models; a Workspace's `spec.features.ai` names one.
    pub models: Vec<LocalModel>,
    /// Where Apertium's service listens, when a Workspace's translation
    /// asks `up` to run one.
    pub apertium: Option<std::net::SocketAddr>,
}

/// Ports: workspace `i` serves HTTP on `base + 4i`, admin on `+1`,
/// federation on `+2`, metrics on `+3`; the object store listens on
/// `base + 100`; SFU node `n` (counting every CallsCluster's) signals on
/// `base + 200 + n`; model server `m` listens on `base + 300 + m`.
pub const S3_OFFSET: u16 = 100;
pub const CALLS_OFFSET: u16 = 200;
pub const MODELS_OFFSET: u16 = 300;
/// Apertium's service listens on `base + 400`.
pub const APERTIUM_OFFSET: u16 = 400;

pub fn plan(
    resources: &[Resource],
    data_dir: &Path,
    base: u16,
    s3_endpoint: Option<&str>,
) -> Result<Plan, String> {
    let mut workspaces: Vec<LocalWorkspace> = Vec::new();
    let mut not_run = Vec::new();
    let objects = match s3_endpoint {
        Some(endpoint) if endpoint.starts_with("http://") || endpoint.starts_with("https://") => {
            Objects::Given {
                endpoint: endpoint.trim_end_matches('/').to_string(),
            }
        }
        Some(endpoint) => return Err(format!("--s3-endpoint {endpoint:?} must be an http(s) URL")),
        None => Objects::Local {
            port: base.checked_add(S3_OFFSET).ok_or_else(|| {
                format!("--port {base} leaves no room for the object store's port")
            })?,
        },
    };
    let mut guest_policies = Vec::new();
    let mut access_policies = Vec::new();
    let mut partners = Vec::new();
    let mut calls: Vec<LocalCalls> = Vec::new();
    let mut models: Vec<LocalModel> = Vec::new();
    for resource in resources {
        if let Resource::LanguageModel(lm) = resource {
            match local_model(lm, data_dir, base, &models)? {
                Ok(model) => models.push(model),
                Err(why) => not_run.push(why),
            }
            continue;
        }
        if let Resource::CallsCluster(cc) = resource {
            calls.push(local_calls(cc, data_dir, base, &calls)?);
            if cc.spec.offloader.is_some() {
                not_run.push(format!(
                    "the offloader of CallsCluster {:?} (recording, transcription, captions): not built yet",
                    cc.metadata.name.clone().unwrap_or_default()
                ));
            }
            continue;
        }
        match resource {
            Resource::GuestPolicy(policy) => guest_policies.push((**policy).clone()),
            Resource::AccessPolicy(policy) => access_policies.push((**policy).clone()),
            Resource::PartnerConnection(partner) => partners.push((**partner).clone()),
            _ => {}
        }
        if matches!(
            resource,
            Resource::GuestPolicy(_) | Resource::AccessPolicy(_) | Resource::PartnerConnection(_)
        ) {
            continue;
        }
        let Resource::Workspace(workspace) = resource else {
            not_run.push(format!(
                "{} {:?}: {}",
                resource.kind(),
                resource.name(),
                why_not(resource.kind())
            ));
            continue;
        };
        let name = workspace.metadata.name.clone().unwrap_or_default();
        if workspaces.iter().any(|w| w.name() == name) {
            return Err(format!("Workspace {name:?} is declared twice"));
        }
        let index = workspaces.len() as u16;
        let port = |offset: u16| {
            base.checked_add(4 * index + offset)
                .filter(|p| *p < base + S3_OFFSET)
                .ok_or_else(|| format!("too many workspaces for the ports above {base}"))
        };
        let local = |p| std::net::SocketAddr::from(([127, 0, 0, 1], p));
        let dir = data_dir.join("workspaces").join(&name);
        let placement = Placement {
            listen: Listen {
                http: local(port(0)?),
                admin: local(port(1)?),
                federation: local(port(2)?),
                metrics: Some(local(port(3)?)),
            },
            secrets_dir: dir.join("secrets"),
            config_dir: dir.clone(),
        };
        let mut workspace = (**workspace).clone();
        let spec = &mut workspace.spec;
        // The local database and object store replace what the manifest names.
        spec.database.managed = None;
        spec.database.external = Some(
            serde_json::from_value(serde_json::json!({
                "connectionSecret": {"name": "entente-up", "key": "uri"}
            }))
            .expect("a valid external database"),
        );
        spec.object_storage.endpoint = objects.endpoint();
        if let Objects::Local { .. } = objects {
            spec.object_storage.region = "us-east-1".into();
            spec.object_storage.force_path_style = true;
        }
        spec.object_storage.ca_secret = None;
        if spec.object_storage.object_lock && matches!(objects, Objects::Local { .. }) {
            return Err(format!(
                "Workspace {name:?}: spec.objectStorage.objectLock is set, and the object store `entente up` serves has no versioning or Object Lock; give --s3-endpoint a store that has them, or set objectLock: false for this site"
            ));
        }
        let provided = Provided::of(&workspace);
        workspaces.push(LocalWorkspace {
            workspace,
            placement,
            dir,
            provided,
        });
    }
    if workspaces.is_empty() {
        return Err("the manifests declare no Workspace, so there is nothing to run".into());
    }
    // Policies apply to the Workspace they name, which must be declared; an
    // expression the server could not run stops everything, as on a cluster
    // the operator would report it.
    let named = |kind: &str, name: Option<&String>, reference: &str| {
        let name = name.cloned().unwrap_or_default();
        workspaces
            .iter()
            .find(|w| w.name() == reference)
            .map(|w| &w.workspace)
            .ok_or_else(|| format!("{kind} {name:?}: spec.workspaceRef names Workspace {reference:?}, which the manifests do not declare"))
    };
    for policy in &guest_policies {
        named(
            "GuestPolicy",
            policy.metadata.name.as_ref(),
            &policy.spec.workspace_ref,
        )?;
    }
    for local in &workspaces {
        if let Some(feature) = &local.workspace.spec.features.calls {
            if !calls.iter().any(|c| c.name() == feature.calls_cluster_ref) {
                return Err(format!(
                    "Workspace {:?}: spec.features.calls.callsClusterRef names CallsCluster {:?}, which the manifests do not declare",
                    local.name(),
                    feature.calls_cluster_ref
                ));
            }
        }
    }
    for local in &workspaces {
        if let Some(feature) = &local.workspace.spec.features.ai {
            if !models
                .iter()
                .any(|m| m.name() == feature.language_model_ref)
            {
                return Err(format!(
                    "Workspace {:?}: spec.features.ai.languageModelRef names LanguageModel {:?}, which the manifests do not declare (or which cannot run here: see \"not run\")",
                    local.name(),
                    feature.language_model_ref
                ));
            }
        }
    }
    let apertium = match workspaces
        .iter()
        .any(|w| entente_crds::render::translation::wants_local_apertium(&w.workspace))
    {
        true => Some(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            base.checked_add(APERTIUM_OFFSET)
                .ok_or_else(|| format!("--port {base} leaves no room for Apertium's port"))?,
        ))),
        false => None,
    };
    for local in &workspaces {
        if let Some(problem) = entente_crds::render::translation::problem(
            &local.workspace,
            apertium.map(|_| "started by entente up"),
        ) {
            return Err(format!("Workspace {:?}: {problem}", local.name()));
        }
    }
    for partner in &partners {
        named(
            "PartnerConnection",
            partner.metadata.name.as_ref(),
            &partner.spec.workspace_ref,
        )?;
    }
    for policy in &access_policies {
        let workspace = named(
            "AccessPolicy",
            policy.metadata.name.as_ref(),
            &policy.spec.workspace_ref,
        )?;
        if let Err((_, message)) = access_problem(policy, workspace) {
            return Err(format!(
                "AccessPolicy {:?}: {message}",
                policy.metadata.name.clone().unwrap_or_default()
            ));
        }
    }
    Ok(Plan {
        workspaces,
        not_run,
        objects,
        data_dir: data_dir.to_path_buf(),
        guest_policies,
        access_policies,
        partners,
        calls,
        models,
        apertium,
    })
}

/// Places the nodes of `cc` on this machine, after those of `earlier`.
fn local_calls(
    cc: &CallsCluster,
    data_dir: &Path,
    base: u16,
    earlier: &[LocalCalls],
) -> Result<LocalCalls, String> {
    let name = cc.metadata.name.clone().unwrap_or_default();
    let count = cc.spec.sfu.replicas.unwrap_or(2).max(1) as u16;
    if count > 1 && cc.spec.sfu.udp_port_range.is_some() {
        return Err(format!(
            "CallsCluster {name:?}: spec.sfu.udpPortRange with {count} replicas: on one machine the nodes would share the range; give spec.sfu.udpPort (node i takes that port + i) or one replica"
        ));
    }
    let first = earlier.iter().map(|c| c.nodes.len() as u16).sum::<u16>();
    let nodes = (0..count)
        .map(|i| {
            base.checked_add(CALLS_OFFSET + first + i)
                .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port)))
                .ok_or_else(|| format!("--port {base} leaves no room for the SFUs' ports"))
        })
        .collect::<Result<_, _>>()?;
    Ok(LocalCalls {
        cluster: cc.clone(),
        dir: data_dir.join("calls").join(&name),
        nodes,
    })
}

/// Places `lm` on this machine, after the model servers of `earlier`; the
/// inner `Err` says why it is not run here.
fn local_model(
    lm: &LanguageModel,
    data_dir: &Path,
    base: u16,
    earlier: &[LocalModel],
) -> Result<Result<LocalModel, String>, String> {
    let name = lm.metadata.name.clone().unwrap_or_default();
    let dir = data_dir.join("models").join(&name);
    let mut model = lm.clone();
    let listen = match (&lm.spec.self_hosted, &lm.spec.external) {
        (Some(hosted), _) => {
            if hosted.local_model.is_none() {
                return Ok(Err(format!(
                    "LanguageModel {name:?}: spec.selfHosted.localModel names no GGUF file to serve on this machine (its image runs on Kubernetes only); not run"
                )));
            }
            let index = earlier.iter().filter(|m| m.listen.is_some()).count() as u16;
            let port = base.checked_add(MODELS_OFFSET + index).ok_or_else(|| {
                format!("--port {base} leaves no room for the model servers' ports")
            })?;
            let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            model.status = Some(entente_crds::language_model::LanguageModelStatus {
                endpoint: Some(format!("http://{listen}")),
                ..Default::default()
            });
            Some(listen)
        }
        _ => None,
    };
    Ok(Ok(LocalModel { model, dir, listen }))
}

/// Why a kind is not run locally yet.
fn why_not(kind: &str) -> &'static str {
    match kind {
        "Bridge" => "bridges are not built yet; not run",
        "LegalHold" => "legal holds are not built yet; not applied",
        _ => "not run",
    }
}
