//! `Workspace`: one organisation's deployment of the Entente server.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{status_struct, DeletionPolicy, PodSettings, SecretKeyRef};

/// One organisation's collaboration server: its replicas, database, object storage,
/// identity, push, retention, network boundary and optional features.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "Workspace",
    namespaced,
    derive = "PartialEq",
    status = "WorkspaceStatus",
    shortname = "ws",
    category = "entente",
    doc = "One organisation's Entente deployment: servers, database, object storage, identity and network boundary.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.readyReplicas"
    ),
    printcolumn(
        name = "Database",
        type_ = "string",
        json_path = ".status.database.phase"
    ),
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.siteUrl"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// Name shown to users and to partners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,
    /// The organisation that runs this workspace; partners see it beside this workspace's users.
    #[schemars(length(min = 1, max = 128))]
    pub organisation: String,
    /// The URL users reach the workspace at, e.g. `https://chat.example.mil`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))").message("siteUrl must be an absolute http(s) URL such as https://chat.example.org"))]
    pub site_url: String,
    /// Server replicas. Two or more give a PodDisruptionBudget and rolling upgrades without downtime.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    /// Image, scheduling and metadata of the server pods.
    #[serde(default)]
    pub pod: PodSettings,
    pub database: DatabaseSpec,
    pub object_storage: ObjectStorageSpec,
    #[serde(default)]
    pub identity: IdentitySpec,
    /// User attributes (nation, clearance, …) that access policies read.
    #[serde(default)]
    pub user_attributes: UserAttributesSpec,
    /// Mobile push notifications. Absent: no push. Present: `IdOnly` unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
    /// How long messages and files are kept. Absent: forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionSpec>,
    #[serde(default)]
    pub network: NetworkSpec,
    /// Exposes the client Service through an Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    #[serde(default)]
    pub federation: FederationSpec,
    #[serde(default)]
    pub limits: LimitsSpec,
    #[serde(default)]
    pub features: FeaturesSpec,
    /// The web client the server serves at `/`: where it may be embedded.
    #[serde(default, skip_serializing_if = "WebSpec::is_default")]
    pub web: WebSpec,
}

/// The web client.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebSpec {
    /// Embeds the client in Microsoft Teams, Outlook and the Microsoft 365
    /// app as a personal tab: those origins may frame it (no other may),
    /// and admins can download the Teams app package
    /// (`GET /api/v1/admin/teams-app.zip`). Absent: no site may frame it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft365: Option<Microsoft365Spec>,
}

impl WebSpec {
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// The Teams app that carries the client into Microsoft 365.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Microsoft365Spec {
    /// The Teams app's id (a GUID you choose once and keep: Teams knows the
    /// app by it).
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    pub app_id: String,
    /// The Entra ID application (client) id the workspace signs users in
    /// with, for Teams single sign-on (`webApplicationInfo`). Absent: users
    /// sign in inside the tab as in a browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    pub entra_application_id: Option<String>,
}

fn default_replicas() -> i32 {
    2
}

/// Where the workspace keeps its data: exactly one of `managed` or `external`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.managed) != has(self.external)").message("set exactly one of database.managed (a CloudNativePG cluster the operator runs) or database.external (a Secret holding a connection URL)"))]
pub struct DatabaseSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedDatabase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalDatabase>,
    /// Connections each server replica keeps open.
    #[serde(default = "default_pool_size")]
    #[schemars(range(min = 1, max = 500))]
    pub pool_size: i32,
}

fn default_pool_size() -> i32 {
    20
}

/// A PostgreSQL cluster run by CloudNativePG for this workspace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.synchronousReplication) || self.synchronousReplication.number < self.instances").message("database.managed.synchronousReplication.number must be less than instances: each synchronous standby needs its own instance besides the primary"))]
pub struct ManagedDatabase {
    /// PostgreSQL instances (one primary, the rest standbys).
    #[serde(default = "default_instances")]
    #[schemars(range(min = 1, max = 9))]
    pub instances: i32,
    /// PostgreSQL major version.
    #[serde(default = "default_postgres_version")]
    #[schemars(range(min = 13, max = 18))]
    pub postgres_version: i32,
    /// Overrides the operand image CloudNativePG runs (otherwise chosen from `postgresVersion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    #[serde(default)]
    pub storage: StorageSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous_replication: Option<SynchronousReplication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// Continuous backup through the Barman Cloud plugin. Absent: no backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
    /// Whether deleting the Workspace deletes the database cluster.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_instances() -> i32 {
    3
}
fn default_postgres_version() -> i32 {
    17
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Volume size per instance, as a Kubernetes quantity.
    #[serde(default = "default_storage_size")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"))]
    pub size: String,
    /// StorageClass of the volumes. Absent: the cluster default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class: None,
        }
    }
}

fn default_storage_size() -> String {
    "10Gi".into()
}

/// Quorum-based synchronous replication: a commit waits for `number` standbys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SynchronousReplication {
    #[schemars(range(min = 1, max = 8))]
    pub number: i32,
}

/// Where and how often the database is backed up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Six-field cron expression (seconds first), as CloudNativePG expects.
    #[serde(default = "default_backup_schedule")]
    #[x_kube(validation = Rule::new("self.split(' ').size() == 6").message("backup.schedule must be a six-field cron expression with seconds first, e.g. \"0 0 2 * * *\""))]
    #[schemars(length(max = 128))]
    pub schedule: String,
    /// How long backups are kept, e.g. `30d`.
    #[serde(default = "default_backup_retention")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*[dwm]$"))]
    pub retention: String,
    /// Object store URL such as `s3://backups/workspaces/`.
    #[x_kube(validation = Rule::new("self.startsWith('s3://')").message("backup.destinationPath must be an s3:// URL, e.g. s3://backups/entente/"))]
    #[schemars(length(min = 6, max = 2048))]
    pub destination_path: String,
    /// S3 endpoint when not AWS, e.g. `https://minio.storage.svc:9000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    pub credentials: S3Credentials,
}

fn default_backup_schedule() -> String {
    "0 0 2 * * *".into()
}
fn default_backup_retention() -> String {
    "30d".into()
}

/// A database the organisation runs itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDatabase {
    /// A Secret key holding a `postgres://` connection URL.
    pub connection_secret: SecretKeyRef,
    /// A Secret key holding the CA certificate that signed the database's server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<SecretKeyRef>,
}

/// S3 access key pair stored in one Secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Credentials {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    #[serde(default = "default_access_key_id_key")]
    pub access_key_id_key: String,
    #[serde(default = "default_secret_access_key_key")]
    pub secret_access_key_key: String,
}

fn default_access_key_id_key() -> String {
    "AWS_ACCESS_KEY_ID".into()
}
fn default_secret_access_key_key() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}

/// The S3-compatible bucket that holds uploaded files, recordings and exports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorageSpec {
    /// S3 endpoint, e.g. `https://s3.eu-central-1.amazonaws.com` or `http://minio.storage:9000`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))").message("objectStorage.endpoint must be an absolute http(s) URL such as https://s3.example.org"))]
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket name; created if missing.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// Address the bucket in the path (`endpoint/bucket`), as most S3-compatible stores need.
    #[serde(default = "default_true")]
    pub force_path_style: bool,
    pub credentials: S3Credentials,
    /// A Secret key holding the CA certificate of the endpoint, for private CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<SecretKeyRef>,
    /// Create the bucket with S3 Object Lock, so legal holds are enforced by the store.
    /// Only possible at creation; the operator reports an error when the store cannot.
    #[serde(default)]
    pub object_lock: bool,
    /// Whether deleting the Workspace deletes the bucket (never a non-empty or locked one).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_region() -> String {
    "us-east-1".into()
}
pub(crate) fn default_true() -> bool {
    true
}

/// How users log in. Several methods may be enabled at once.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.local.enabled || has(self.oidc) || has(self.saml)").message("enable at least one way to log in: identity.local.enabled, identity.oidc or identity.saml"))]
pub struct IdentitySpec {
    #[serde(default)]
    pub local: LocalIdentity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlSpec>,
}

/// Accounts with passwords kept by the workspace itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalIdentity {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub admin: AdminAccount,
    #[serde(default = "default_min_password_length")]
    #[schemars(range(min = 8, max = 128))]
    pub min_password_length: i32,
}

impl Default for LocalIdentity {
    fn default() -> Self {
        Self {
            enabled: true,
            admin: AdminAccount::default(),
            min_password_length: default_min_password_length(),
        }
    }
}

fn default_min_password_length() -> i32 {
    12
}

/// The first system admin, created at start-up if missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminAccount {
    #[serde(default = "default_admin_username")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The admin's password. Absent: the operator generates one into `<workspace>-admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeyRef>,
}

impl Default for AdminAccount {
    fn default() -> Self {
        Self {
            username: default_admin_username(),
            email: None,
            password_secret: None,
        }
    }
}

fn default_admin_username() -> String {
    "admin".into()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OidcProvider {
    #[default]
    Generic,
    /// Microsoft Entra ID; needs `tenantId`.
    EntraId,
}

/// Single sign-on through an OpenID Connect provider such as Entra ID or Keycloak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider != 'EntraId' || has(self.tenantId)").message("identity.oidc.tenantId is required when provider is EntraId"))]
#[x_kube(validation = Rule::new("self.provider == 'EntraId' || has(self.issuerUrl)").message("identity.oidc.issuerUrl is required unless provider is EntraId (whose issuer comes from tenantId)"))]
pub struct OidcSpec {
    #[serde(default)]
    pub provider: OidcProvider,
    /// Issuer URL; discovery is read from `<issuerUrl>/.well-known/openid-configuration`.
    /// For `EntraId`, absent means `https://login.microsoftonline.com/<tenantId>/v2.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && self.startsWith('https://')").message("identity.oidc.issuerUrl must be an https URL"))]
    pub issuer_url: Option<String>,
    /// For `EntraId`: the directory (tenant) id users sign in from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// For `EntraId` with a multi-tenant app: the other tenants whose users
    /// may sign in (`tenantId`'s always may). A user from any other tenant
    /// is refused, and told so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allowed_tenants: Vec<String>,
    /// Groups (ids, as the `groups` claim carries them) whose members are
    /// system admins; checked at every sign-in. Empty: nobody is made an
    /// admin by the identity provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub admin_groups: Vec<String>,
    #[schemars(length(min = 1, max = 256))]
    pub client_id: String,
    pub client_secret: SecretKeyRef,
    #[serde(default = "default_scopes")]
    #[schemars(length(max = 32))]
    pub scopes: Vec<String>,
    /// User attribute → ID-token claim, e.g. `nation: ext_nation`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claim_mappings: BTreeMap<String, String>,
    /// Text on the login button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_text: Option<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

/// Single sign-on through a SAML 2.0 identity provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.metadataUrl) != has(self.metadataSecret)").message("set exactly one of identity.saml.metadataUrl or identity.saml.metadataSecret"))]
pub struct SamlSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    /// A Secret key holding the IdP metadata XML, for IdPs the server cannot reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_secret: Option<SecretKeyRef>,
    #[schemars(length(min = 1, max = 1024))]
    pub entity_id: String,
    /// User attribute → SAML attribute name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attribute_mappings: BTreeMap<String, String>,
}

/// The attributes users carry and how ranked ones are ordered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAttributesSpec {
    /// Attributes whose values have an order, lowest first, so policies can compare them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub ranked: Vec<RankedAttribute>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RankedAttribute {
    #[schemars(regex(pattern = r"^[a-z][a-zA-Z0-9_]{0,62}$"))]
    pub name: String,
    /// Levels from lowest to highest, e.g. UNCLASSIFIED, RESTRICTED, CONFIDENTIAL, SECRET.
    #[schemars(length(min = 2, max = 32))]
    #[x_kube(validation = Rule::new("self.all(l, self.exists_one(m, m == l))").message("levels of a ranked attribute must be distinct"))]
    pub levels: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PushMode {
    /// Only ids leave the workspace; the app fetches content over its own connection.
    #[default]
    IdOnly,
    /// Message previews are sent through the push proxy. Only for proxies you trust.
    Full,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSpec {
    #[serde(default)]
    pub mode: PushMode,
    /// The push proxy that relays to APNS/FCM.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && self.startsWith('https://')").message("push.proxyUrl must be an https URL"))]
    pub proxy_url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.messageDays) || has(self.fileDays)").message("retention needs messageDays, fileDays or both; remove retention to keep everything"))]
pub struct RetentionSpec {
    /// Messages older than this are deleted, unless under legal hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub message_days: Option<i32>,
    /// Files older than this are deleted, unless under legal hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub file_days: Option<i32>,
}

/// The network boundary of the workspace (a DMZ, in the reference architecture).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Emit NetworkPolicies that allow only the traffic below. Disable only if
    /// another layer enforces the boundary.
    #[serde(default = "default_true")]
    pub policies: bool,
    /// Where client traffic may come from (typically the ingress controller). Absent: any pod in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ingress: Option<PeerSelector>,
    /// Who may scrape the server's Prometheus metrics (its `metrics` port,
    /// apart from the API), typically the monitoring namespace. Absent:
    /// only pods in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_ingress: Option<PeerSelector>,
    /// Networks partner workspaces connect from; federation is closed to all others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("network.partnerCidrs entries must be CIDRs such as 198.51.100.0/24"))]
    pub partner_cidrs: Vec<String>,
    /// Networks of services outside the cluster the server may reach (external database, object store, model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("network.egressCidrs entries must be CIDRs such as 10.20.0.0/16"))]
    pub egress_cidrs: Vec<String>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            policies: true,
            client_ingress: None,
            metrics_ingress: None,
            partner_cidrs: Vec::new(),
            egress_cidrs: Vec::new(),
        }
    }
}

/// Pods allowed to connect, by namespace and pod labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.namespaceSelector) || has(self.podSelector)").message("network.clientIngress needs namespaceSelector, podSelector or both"))]
pub struct PeerSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"))]
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Secret with the TLS certificate for `host`. Absent: plain HTTP at the ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The federation endpoint and its certificates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.renewBefore) < duration(self.certificateDuration)").message("federation.renewBefore must be shorter than federation.certificateDuration"))]
pub struct FederationSpec {
    /// The identity partners expect in this workspace's certificate (a DNS name).
    /// Absent: `<workspace>.<namespace>.entente.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"))]
    pub identity: Option<String>,
    /// Lifetime of the server certificate the operator issues, as a Go duration.
    #[serde(default = "default_certificate_duration")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+h)?([0-9]+m)?([0-9]+s)?$') && self != ''").message("federation.certificateDuration must be a duration in h/m/s such as 2160h"))]
    #[schemars(length(max = 32))]
    pub certificate_duration: String,
    /// How long before expiry the certificate is renewed.
    #[serde(default = "default_renew_before")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+h)?([0-9]+m)?([0-9]+s)?$') && self != ''").message("federation.renewBefore must be a duration in h/m/s such as 720h"))]
    #[schemars(length(max = 32))]
    pub renew_before: String,
}

impl Default for FederationSpec {
    fn default() -> Self {
        Self {
            identity: None,
            certificate_duration: default_certificate_duration(),
            renew_before: default_renew_before(),
        }
    }
}

fn default_certificate_duration() -> String {
    "2160h".into()
}
fn default_renew_before() -> String {
    "720h".into()
}

/// Limits that protect the server from its users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsSpec {
    /// Largest file a user may upload, as a quantity.
    #[serde(default = "default_max_upload")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|k|M|G)?$"))]
    pub max_upload_size: String,
    /// Requests per minute one user may make before getting 429.
    #[serde(default = "default_requests_per_minute")]
    #[schemars(range(min = 1, max = 100000))]
    pub requests_per_minute: i32,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        Self {
            max_upload_size: default_max_upload(),
            requests_per_minute: default_requests_per_minute(),
        }
    }
}

fn default_max_upload() -> String {
    "100Mi".into()
}
fn default_requests_per_minute() -> i32 {
    600
}

/// Optional capabilities, each backed by another Entente resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.translation) || has(self.translation.provider) || has(self.translation.languageModelRef) || has(self.ai)").message("features.translation needs a provider (apertium or libreTranslate), or a language model: a languageModelRef, or features.ai to take its model from"))]
pub struct FeaturesSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<CallsFeature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiFeature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<TranslationFeature>,
}

/// Audio calls and screen share through a `CallsCluster`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallsFeature {
    /// Name of a CallsCluster in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub calls_cluster_ref: String,
    /// Record calls (through the CallsCluster's offloader).
    #[serde(default)]
    pub recording: bool,
}

/// Summaries and agents through a `LanguageModel`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiFeature {
    /// Name of a LanguageModel in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub language_model_ref: String,
    #[serde(default = "default_true")]
    pub summaries: bool,
    /// Bot users that answer when mentioned in a channel or messaged
    /// directly, through this model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub agents: Vec<AgentSpec>,
    /// Partner users in shared channels may use the agents too (their
    /// context is only ever the shared channel they asked in).
    #[serde(default)]
    pub allow_partner_users: bool,
    /// Requests to the model at once from one server; more wait, and are
    /// told the model is busy after 30 s.
    #[serde(default = "default_ai_concurrency")]
    #[schemars(range(min = 1, max = 256))]
    pub max_concurrent_requests: i32,
}

fn default_ai_concurrency() -> i32 {
    4
}

/// An agent: a bot user answering through the workspace's model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Its username (people mention it as `@name`).
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,
    /// Its system instructions.
    #[schemars(length(max = 8192))]
    pub instructions: String,
    /// A model name other than the LanguageModel's `chatModel`, served by
    /// the same endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Channels (by name) it answers in; empty: any channel. Direct
    /// messages to it are always answered (for users it serves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Usernames it answers; empty: anyone who may read the channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Offer the model tools (search posts, read a thread, list channel
    /// members), run with the asking user's permissions.
    #[serde(default = "default_true")]
    pub tools: bool,
}

/// Automatic translation of messages in channels with several languages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranslationFeature {
    /// Name of a LanguageModel; absent: the one of `features.ai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_model_ref: Option<String>,
    /// Languages offered, as BCP 47 tags such as `en`, `fr`, `de`.
    #[schemars(length(min = 1, max = 32))]
    pub languages: Vec<String>,
    /// The language of posts whose author chose none; absent: the first
    /// of `languages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_language: Option<String>,
    /// Who translates; absent: the language model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<TranslationProviderSpec>,
    /// Translations asked of the provider at once, per server.
    #[serde(default = "default_translation_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: i32,
}

fn default_translation_concurrency() -> i32 {
    4
}

/// A translation service the workspace's text may be sent to; nothing is
/// sent anywhere else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.apertium) != has(self.libreTranslate)").message("provider needs exactly one of apertium or libreTranslate"))]
pub struct TranslationProviderSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apertium: Option<ApertiumSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libre_translate: Option<LibreTranslateSpec>,
}

/// Apertium's HTTP service (APY): rule-based, offline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.url) && has(self.pod))").message("apertium takes url (a service that runs already) or pod (one the operator runs), not both"))]
#[x_kube(validation = Rule::new("!has(self.pod) || has(self.pod.image)").message("apertium.pod.image is required: an image of Apertium's service (APY) with the language pairs, such as apertium/apy"))]
pub struct ApertiumSpec {
    /// The base URL of a service that runs already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A service for the operator to run beside the workspace, from an
    /// image serving APY on port 2737 with the pairs (and, for language
    /// detection, the analysers) it should offer. Reached only by the
    /// workspace's servers. Under `entente up`, with no url, Debian's
    /// apertium-apy runs instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSettings>,
    /// Pods of the service the operator runs.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 16))]
    pub replicas: i32,
}

fn one() -> i32 {
    1
}

/// A LibreTranslate-compatible API (`POST /translate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibreTranslateSpec {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret: Option<SecretKeyRef>,
}

status_struct! {
    /// What the operator observed of a Workspace.
    WorkspaceStatus {
        /// Server pods that exist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub replicas: Option<i32>,
        /// Server pods that are ready.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ready_replicas: Option<i32>,
        /// Label selector of the server pods, for the scale subresource.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub selector: Option<String>,
        /// The image the server pods run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoints: Option<WorkspaceEndpoints>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub database: Option<DatabaseStatus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bucket: Option<BucketStatus>,
        /// When the federation server certificate expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub federation_certificate_expiry: Option<Time>,
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceEndpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// `External`, or the CloudNativePG cluster's phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_instances: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub object_lock: bool,
}
