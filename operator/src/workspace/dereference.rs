//! The first step of a Workspace reconcile: read everything the spec refers
//! to and everything the operator made before, and list what is missing in
//! words that name the field to fix.

use std::collections::BTreeMap;

use entente_crds::{
    AccessPolicy, CallsCluster, GuestPolicy, LanguageModel, PartnerConnection, Workspace,
};
use k8s_openapi::{
    api::{apps::v1::Deployment, batch::v1::Job, core::v1::Secret},
    ByteString,
};
use kube::{
    api::{ApiResource, DynamicObject},
    Api, Client, ResourceExt,
};
use serde_json::Value;

use super::{
    build::{migration, secrets},
    layout::Names,
};
use crate::reconcile::{children, Error};

/// CloudNativePG's kinds, which the operator applies as untyped objects.
pub fn cnpg_cluster() -> ApiResource {
    children::resource("postgresql.cnpg.io", "v1", "Cluster", "clusters")
}
pub fn cnpg_scheduled_backup() -> ApiResource {
    children::resource(
        "postgresql.cnpg.io",
        "v1",
        "ScheduledBackup",
        "scheduledbackups",
    )
}
pub fn barman_object_store() -> ApiResource {
    children::resource("barmancloud.cnpg.io", "v1", "ObjectStore", "objectstores")
}

/// What a reconcile starts from.
pub struct Refs {
    /// Referenced and operator-made Secrets that exist, by name.
    pub secrets: BTreeMap<String, Secret>,
    /// What is missing, each naming the field that refers to it.
    pub problems: Vec<String>,
    pub deployment: Option<Deployment>,
    /// The migration Job of the wanted image.
    pub migration: Option<Job>,
    /// The managed database's Cluster as stored, with CloudNativePG's status.
    pub cluster: Option<Value>,
    /// The GuestPolicies and AccessPolicies of its namespace (those naming
    /// this workspace are rendered into its config).
    pub guest_policies: Vec<GuestPolicy>,
    pub access_policies: Vec<AccessPolicy>,
    /// The PartnerConnections of its namespace (those naming this workspace
    /// are rendered into its config, their CA Secrets read into `secrets`).
    pub partner_connections: Vec<PartnerConnection>,
    /// The CallsCluster `spec.features.calls` names, if it exists, and the
    /// signalling URLs of its SFU nodes.
    pub calls_cluster: Option<CallsCluster>,
    pub calls_nodes: Vec<String>,
    /// The LanguageModel `spec.features.ai` names, if it exists.
    pub language_model: Option<LanguageModel>,
}

impl Refs {
    pub fn secret_value(&self, name: &str, key: &str) -> Option<&[u8]> {
        self.secrets
            .get(name)?
            .data
            .as_ref()?
            .get(key)
            .map(|ByteString(bytes)| bytes.as_slice())
    }
}

/// The spec field a mounted secret comes from, for messages.
fn field_of(mount: &secrets::SecretMount) -> &'static str {
    match (mount.dir, mount.file) {
        secrets::DATABASE_URL => "spec.database.external.connectionSecret",
        secrets::DATABASE_CA => "spec.database.external.caSecret",
        secrets::S3_ACCESS_KEY => "spec.objectStorage.credentials.accessKeyIdKey",
        secrets::S3_SECRET_KEY => "spec.objectStorage.credentials.secretAccessKeyKey",
        secrets::S3_CA => "spec.objectStorage.caSecret",
        secrets::ADMIN_PASSWORD => "spec.identity.local.admin.passwordSecret",
        secrets::OIDC_CLIENT_SECRET => "spec.identity.oidc.clientSecret",
        secrets::SAML_METADATA => "spec.identity.saml.metadataSecret",
        _ => "spec",
    }
}

/// The Secrets the operator makes for a workspace.
fn generated_secrets(names: &Names) -> [String; 4] {
    [
        names.runtime_secret(),
        names.admin_secret(),
        names.federation_ca_secret(),
        names.federation_tls_secret(),
    ]
}

/// The Secrets a Workspace's spec names, as (Secret, key, spec field):
/// a person makes them, and the workspace cannot run without them.
pub fn referenced_secrets(workspace: &Workspace) -> Vec<(String, String, String)> {
    let names = Names::of(workspace);
    let generated = generated_secrets(&names);
    let mut wanted: Vec<(String, String, String)> = secrets::mounts(workspace)
        .iter()
        .filter(|m| !generated.contains(&m.secret) && m.secret != names.database_app_secret())
        .map(|m| (m.secret.clone(), m.key.clone(), field_of(m).to_string()))
        .collect();
    if let Some(backup) = workspace
        .spec
        .database
        .managed
        .as_ref()
        .and_then(|m| m.backup.as_ref())
    {
        let c = &backup.credentials;
        for key in [&c.access_key_id_key, &c.secret_access_key_key] {
            wanted.push((
                c.secret_name.clone(),
                key.clone(),
                "spec.database.managed.backup.credentials".into(),
            ));
        }
    }
    wanted
}

/// The names of the Secrets a Workspace reads but does not own: a change to
/// one of them should wake its reconcile.
/// The LibreTranslate key Secret `spec.features.translation` names.
pub use entente_crds::render::translation::key_secret as translation_key;

pub fn secrets_read(workspace: &Workspace) -> Vec<String> {
    let mut names: Vec<String> = referenced_secrets(workspace)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    if let Some(calls) = &workspace.spec.features.calls {
        names.push(crate::calls::token_secret(&calls.calls_cluster_ref));
    }
    if let Some(key) = translation_key(workspace) {
        names.push(key.name);
    }
    // The key of a self-hosted model (made by its controller); a key a
    // person made changes with its LanguageModel, which is watched.
    if let Some(ai) = &workspace.spec.features.ai {
        names.push(entente_crds::render::ai::generated_key_secret(
            &ai.language_model_ref,
        ));
    }
    names.sort();
    names.dedup();
    names
}

fn read_error(what: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Read {
        what,
        source: Box::new(source),
    }
}

pub async fn dereference(client: &Client, workspace: &Workspace) -> Result<Refs, Error> {
    let namespace = workspace.namespace().unwrap_or_default();
    let names = Names::of(workspace);
    let spec = &workspace.spec;
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut refs = Refs {
        secrets: BTreeMap::new(),
        problems: Vec::new(),
        deployment: Api::<Deployment>::namespaced(client.clone(), &namespace)
            .get_opt(&names.server())
            .await
            .map_err(read_error(format!("Deployment {:?}", names.server())))?,
        migration: Api::<Job>::namespaced(client.clone(), &namespace)
            .get_opt(&migration::name(workspace))
            .await
            .map_err(read_error("the migration Job".into()))?,
        cluster: None,
        guest_policies: Api::<GuestPolicy>::namespaced(client.clone(), &namespace)
            .list(&Default::default())
            .await
            .map_err(read_error("the GuestPolicies".into()))?
            .items,
        access_policies: Api::<AccessPolicy>::namespaced(client.clone(), &namespace)
            .list(&Default::default())
            .await
            .map_err(read_error("the AccessPolicies".into()))?
            .items,
        partner_connections: Api::<PartnerConnection>::namespaced(client.clone(), &namespace)
            .list(&Default::default())
            .await
            .map_err(read_error("the PartnerConnections".into()))?
            .items,
        calls_cluster: None,
        calls_nodes: Vec::new(),
        language_model: None,
    };

    // Secrets the operator makes itself: read to keep what they hold.
    let generated = generated_secrets(&names);
    // Referenced Secrets: must exist and hold the key.
    let wanted = referenced_secrets(workspace);
    let mut lookups: Vec<String> = generated.to_vec();
    lookups.extend(wanted.iter().map(|(name, _, _)| name.clone()));
    // Partners' CA bundles: a missing one leaves that partner out, and its
    // own status says so; the workspace runs on.
    let workspace_name = workspace.name_any();
    lookups.extend(
        refs.partner_connections
            .iter()
            .filter(|p| p.spec.workspace_ref == workspace_name)
            .map(|p| p.spec.partner.ca_bundle.name.clone()),
    );
    // The join-token key of the CallsCluster it uses (made by that controller).
    if let Some(calls) = &spec.features.calls {
        lookups.push(crate::calls::token_secret(&calls.calls_cluster_ref));
    }
    // A LibreTranslate key: a person's, and the workspace cannot translate without it.
    if let Some(key) = translation_key(workspace) {
        lookups.push(key.name);
    }
    lookups.sort();
    lookups.dedup();
    for name in lookups {
        if let Some(secret) = secret_api
            .get_opt(&name)
            .await
            .map_err(read_error(format!("Secret {name:?}")))?
        {
            refs.secrets.insert(name, secret);
        }
    }
    for (name, key, field) in &wanted {
        if !refs.secrets.contains_key(name) {
            refs.problems.push(format!(
                "Secret {name:?} ({field}) not found in namespace {namespace:?}"
            ));
        } else if refs.secret_value(name, key).is_none() {
            refs.problems
                .push(format!("Secret {name:?} ({field}) has no key {key:?}"));
        }
    }
    if let Some(key) = translation_key(workspace) {
        if refs.secret_value(&key.name, &key.key).is_none() {
            refs.problems.push(format!(
                "Secret {:?} with key {:?} (spec.features.translation.provider.libreTranslate.apiKeySecret) not found in namespace {namespace:?}",
                key.name, key.key
            ));
        }
    }
    if let Some(problem) = entente_crds::render::translation::problem(
        workspace,
        super::build::apertium::url(workspace).as_deref(),
    ) {
        refs.problems.push(problem);
    }
    refs.problems.dedup();

    // Shared kinds the features refer to.
    let mut needs: Vec<(&str, &str, &str)> = Vec::new();
    if let Some(calls) = &spec.features.calls {
        needs.push((
            "CallsCluster",
            &calls.calls_cluster_ref,
            "spec.features.calls.callsClusterRef",
        ));
    }
    if let Some(ai) = &spec.features.ai {
        needs.push((
            "LanguageModel",
            &ai.language_model_ref,
            "spec.features.ai.languageModelRef",
        ));
    }
    if let Some(model) = spec
        .features
        .translation
        .as_ref()
        .and_then(|t| t.language_model_ref.as_ref())
    {
        needs.push((
            "LanguageModel",
            model,
            "spec.features.translation.languageModelRef",
        ));
    }
    let ai_model = spec
        .features
        .ai
        .as_ref()
        .map(|ai| ai.language_model_ref.as_str());
    for (kind, name, field) in needs {
        let found = if kind == "CallsCluster" {
            Api::<CallsCluster>::namespaced(client.clone(), &namespace)
                .get_opt(name)
                .await
                .map(|found| {
                    refs.calls_cluster = found;
                    refs.calls_cluster.is_some()
                })
        } else {
            Api::<LanguageModel>::namespaced(client.clone(), &namespace)
                .get_opt(name)
                .await
                .map(|found| {
                    let exists = found.is_some();
                    if Some(name) == ai_model {
                        refs.language_model = found;
                    }
                    exists
                })
        }
        .map_err(read_error(format!("{kind} {name:?}")))?;
        if !found {
            refs.problems.push(format!(
                "{kind} {name:?} ({field}) not found in namespace {namespace:?}"
            ));
        }
    }

    // The model's API key (a person's Secret, or the one its controller
    // made): copied beside the config, as the calls key is.
    if let Some(key) = refs
        .language_model
        .as_ref()
        .and_then(|lm| entente_crds::render::ai::api_key_secret(lm, &lm.name_any()))
    {
        if let Some(secret) = secret_api
            .get_opt(&key.name)
            .await
            .map_err(read_error(format!("Secret {:?}", key.name)))?
        {
            refs.secrets.insert(key.name.clone(), secret);
        }
    }

    if let Some(cc) = &refs.calls_cluster {
        refs.calls_nodes = crate::calls::node_urls(client, cc)
            .await
            .map_err(read_error("the SFU pods".into()))?;
    }

    if spec.database.managed.is_some() {
        // A 404 here is either "no such Cluster yet" or "no CloudNativePG";
        // applying it tells the two apart.
        refs.cluster =
            Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &cnpg_cluster())
                .get_opt(&names.database_cluster())
                .await
                .map_err(read_error("the CloudNativePG Cluster".into()))?
                .map(|o| serde_json::to_value(o).expect("objects serialize"));
    }
    Ok(refs)
}
