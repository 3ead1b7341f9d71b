//! `RuntimeConfig`: everything one workspace server process needs.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, SecretSource};
use crate::{
    access_policy::PolicyMode,
    language_model::ModelProvider,
    partner_connection::{QueueFullPolicy, ShareMode},
    workspace::PushMode,
};

/// The schema version this build reads and writes.
pub const RUNTIME_CONFIG_VERSION: u32 = 1;

/// The rendered configuration of one workspace server.
///
/// [`RuntimeConfig::restart_sections`] names the sections a running server
/// cannot take live (the operator rolls the pods when they change); every
/// other section (partners, guests, access, legal holds, retention, the
/// upload and request-rate limits) is taken live by the server's reload
/// through [`RuntimeConfig::reload`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Always [`RUNTIME_CONFIG_VERSION`].
    pub version: u32,
    pub workspace: WorkspaceIdentity,
    pub listen: Listen,
    pub database: DatabaseConfig,
    pub object_storage: ObjectStorageConfig,
    pub identity: IdentityConfig,
    pub federation: FederationConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guests: Vec<GuestRules>,
    #[serde(default)]
    pub access: AccessConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<CallsConfig>,
    /// Translation of posts into their readers' languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<TranslationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushConfig>,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legal_holds: Vec<LegalHoldConfig>,
    pub limits: LimitsConfig,
    /// The web client: who may frame it.
    #[serde(default, skip_serializing_if = "WebConfig::is_default")]
    pub web: WebConfig,
}

impl RuntimeConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        super::load(path, "RuntimeConfig", RUNTIME_CONFIG_VERSION)
    }

    /// The file the operator mounts and `entente up` writes.
    pub fn to_yaml(&self) -> String {
        super::to_yaml(self)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        super::parse(text, origin, "RuntimeConfig", RUNTIME_CONFIG_VERSION)
    }

    /// What a running server with this config does when `new` appears: the
    /// config to run with (`new`, except every section of
    /// [`RuntimeConfig::restart_sections`], kept as it runs) and the names of
    /// the sections that changed but wait for a restart. The one place the
    /// live/restart split is decided.
    pub fn reload(&self, new: &RuntimeConfig) -> (RuntimeConfig, Vec<&'static str>) {
        let restart = self.sections_needing_restart(new);
        let mut effective = serde_json::to_value(new).expect("a RuntimeConfig serializes");
        for (name, running) in self.restart_sections() {
            let (parent, key) = match name.rsplit_once('.') {
                Some((parent, key)) => (
                    effective.pointer_mut(&format!("/{}", parent.replace('.', "/"))),
                    key,
                ),
                None => (Some(&mut effective), name),
            };
            let Some(serde_json::Value::Object(parent)) = parent else {
                unreachable!("restart section {name} is inside an object of the config");
            };
            match running {
                // Absent sections are skipped when serialized.
                serde_json::Value::Null => parent.remove(key),
                running => parent.insert(key.to_string(), running),
            };
        }
        let effective = serde_json::from_value(effective)
            .expect("a config assembled from two valid configs is valid");
        (effective, restart)
    }

    /// The top-level sections (dotted names as in the file) that differ between
    /// two configs and cannot be applied live: the server logs these as needing a restart.
    pub fn sections_needing_restart(&self, new: &RuntimeConfig) -> Vec<&'static str> {
        self.restart_sections()
            .into_iter()
            .zip(new.restart_sections())
            .filter(|((_, old), (_, new))| old != new)
            .map(|((name, _), _)| name)
            .collect()
    }

    /// The sections a running server cannot take live, by name: a change in
    /// any of them needs a restart (the operator rolls the pods on it).
    pub fn restart_sections(&self) -> Vec<(&'static str, serde_json::Value)> {
        let json = |v: &dyn erased::Serialize| v.to_json();
        vec![
            ("version", json(&self.version)),
            ("workspace", json(&self.workspace)),
            ("listen", json(&self.listen)),
            ("database", json(&self.database)),
            ("objectStorage", json(&self.object_storage)),
            ("identity", json(&self.identity)),
            ("federation.tls", json(&self.federation.tls)),
            ("ai", json(&self.ai)),
            ("calls", json(&self.calls)),
            ("translation", json(&self.translation)),
            ("push", json(&self.push)),
            // The body limit is built into the HTTP stack when it starts.
            (
                "limits.maxRequestBodyBytes",
                json(&self.limits.max_request_body_bytes),
            ),
            // The hashing workers start with the server.
            (
                "limits.passwordWorkers",
                json(&self.limits.password_workers),
            ),
        ]
    }
}

/// Who this workspace is, to users and to partners.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceIdentity {
    /// Globally unique id, the origin of every event this workspace creates.
    pub id: String,
    pub display_name: String,
    pub organisation: String,
    pub site_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listen {
    /// REST, WebSocket and health.
    pub http: SocketAddr,
    /// Federation gRPC over mutual TLS.
    pub federation: SocketAddr,
    /// Admin gRPC the operator reads status from.
    pub admin: SocketAddr,
    /// Prometheus metrics (`/metrics`), apart from the API so its public
    /// port does not expose them. Absent: not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A `postgres://` URL.
    pub url: SecretSource,
    pub pool_size: u32,
    /// CA certificate to verify the database's TLS certificate against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectStorageConfig {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub force_path_style: bool,
    pub access_key_id: SecretSource,
    pub secret_access_key: SecretSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The bucket has Object Lock, so files under legal hold get an S3 legal hold too.
    #[serde(default)]
    pub object_lock: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityConfig {
    pub local: LocalIdentityConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlConfig>,
    /// Ranked attributes: name → levels, lowest first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ranked_attributes: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalIdentityConfig {
    pub enabled: bool,
    pub admin_username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_email: Option<String>,
    /// The bootstrap admin's password; required when `enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<SecretSource>,
    pub min_password_length: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcConfig {
    #[serde(default)]
    pub provider: crate::workspace::OidcProvider,
    pub issuer_url: String,
    /// Entra ID: the workspace's own tenant, and the others allowed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_tenants: Vec<String>,
    /// Groups whose members are system admins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_groups: Vec<String>,
    pub client_id: String,
    pub client_secret: SecretSource,
    pub scopes: Vec<String>,
    /// User attribute → claim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claim_mappings: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_text: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SamlConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_file: Option<PathBuf>,
    pub entity_id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attribute_mappings: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederationConfig {
    pub tls: TlsFiles,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partners: Vec<PartnerConfig>,
}

/// PEM files of a TLS identity and the CA that issued it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

/// One partner workspace and what is shared with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerConfig {
    /// The partner's workspace id (the origin its events must carry).
    pub workspace_id: String,
    pub organisation: String,
    pub endpoint: String,
    /// CA bundle the partner's certificate must chain to.
    pub ca_file: PathBuf,
    /// DNS name the partner's certificate must carry.
    pub identity: String,
    pub channels: Vec<SharedChannelConfig>,
    pub sync: SyncConfig,
    pub allow_relay: bool,
    pub suspended: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedChannelConfig {
    pub name: String,
    pub remote_name: String,
    pub mode: ShareMode,
    /// Effective permissions (the mode's defaults narrowed by the spec).
    pub post: bool,
    pub react: bool,
    pub upload_files: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncConfig {
    pub max_queued_events: u64,
    pub max_queued_bytes: u64,
    pub when_queue_full: QueueFullPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_bytes_per_second: Option<u64>,
    pub max_file_bytes: u64,
    pub keepalive_seconds: u32,
    pub max_backoff_seconds: u32,
    pub compression: bool,
}

/// Guests admitted under one GuestPolicy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestRules {
    /// The GuestPolicy's name.
    pub policy: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<String>,
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_lifetime_seconds: Option<u64>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub invitation_lifetime_seconds: u64,
    pub upload_files: bool,
    pub direct_messages: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AccessRule>,
}

/// One AccessPolicy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessRule {
    pub policy: String,
    pub expression: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Channel label → value, all of which must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channel_labels: BTreeMap<String, String>,
    pub mode: PolicyMode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AiConfig {
    pub provider: ModelProvider,
    /// Base URL of the OpenAI-compatible API; nothing is sent anywhere else.
    pub base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretSource>,
    pub chat_model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_api_version: Option<String>,
    pub timeout_seconds: u32,
    pub summaries: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentConfig>,
    pub allow_partner_users: bool,
    /// Requests to the model at once from this server.
    pub max_concurrent_requests: u32,
    /// Languages offered for translation; empty: no translation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub translation_languages: Vec<String>,
}

/// Translation: who translates, and into what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TranslationConfig {
    pub provider: TranslationProvider,
    /// Languages readers may choose (BCP 47: `en`, `es`, …).
    pub languages: Vec<String>,
    /// The language of a post whose author has chosen none.
    pub default_language: String,
    /// Translations asked of the provider at once.
    pub concurrency: u32,
}

/// The one place a workspace's text is sent to be translated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum TranslationProvider {
    /// Apertium's HTTP service (APY): rule-based, offline.
    Apertium { url: String },
    /// A LibreTranslate-compatible API (`POST /translate`).
    LibreTranslate {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key: Option<SecretSource>,
    },
    /// The workspace's language model (`ai`).
    LanguageModel,
}

/// An agent: a bot user answering through the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// Its username.
    pub name: String,
    pub display_name: String,
    pub instructions: String,
    /// The model it asks; absent: `chatModel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Channel names it answers in; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Usernames it answers; empty: anyone who may read the channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    pub tools: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallsConfig {
    /// Signalling URLs of the SFU nodes; the server picks the least loaded healthy one.
    pub sfu_nodes: Vec<String>,
    /// Key the join tokens are signed with (shared with the SFU).
    pub join_token_key: SecretSource,
    pub join_token_ttl_seconds: u32,
    pub recording: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushConfig {
    pub mode: PushMode,
    pub proxy_url: String,
}

/// The web client the server serves at `/`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebConfig {
    /// Origins allowed to frame the client (its `frame-ancestors`); empty:
    /// none may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frame_ancestors: Vec<String>,
    /// The Teams app package the server generates, when the workspace is
    /// embedded in Microsoft 365.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<TeamsAppConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamsAppConfig {
    pub app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra_application_id: Option<String>,
}

/// The origins Microsoft Teams, Outlook and the Microsoft 365 app frame a
/// personal tab from (Microsoft's list for tabs extended across Microsoft 365).
pub const MICROSOFT_365_FRAME_ANCESTORS: &[&str] = &[
    "teams.microsoft.com",
    "*.teams.microsoft.com",
    "*.skype.com",
    "teams.cloud.microsoft",
    "*.cloud.microsoft",
    "*.office.com",
    "outlook.office.com",
    "outlook.office365.com",
    "*.microsoft365.com",
];

impl WebConfig {
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_days: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegalHoldConfig {
    /// The LegalHold's name.
    pub hold: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    pub include_files: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_upload_bytes: u64,
    pub max_request_body_bytes: u64,
    pub requests_per_minute: u32,
    /// What one connection may hold and how long it may take.
    #[serde(default)]
    pub connections: ConnectionLimits,
    /// Password checks (argon2id, 19 MiB each) run at once; more wait in a
    /// bounded queue, then get 503. 0: one per CPU core.
    #[serde(default)]
    pub password_workers: u32,
}

/// What the API's listener allows each connection. Read as each connection
/// is accepted: a change applies to new connections. Each field left out
/// keeps its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Seconds a client has to send a request's headers; also how long an
    /// idle keep-alive connection stays open waiting for the next request.
    pub header_timeout_seconds: u32,
    /// Seconds a request body may send nothing before it is cut.
    pub body_timeout_seconds: u32,
    /// Largest request head (request line and headers): beyond, 431.
    pub max_header_bytes: u32,
    /// Open connections from one client address; beyond, new ones are
    /// closed at once. Behind an Ingress, the Ingress is one address.
    pub per_address: u32,
    /// Seconds a WebSocket client has to take one message before it counts
    /// as too slow and is disconnected (it resumes with `since`).
    pub websocket_send_timeout_seconds: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            max_header_bytes: 16 * 1024,
            per_address: 256,
            websocket_send_timeout_seconds: 10,
        }
    }
}

/// `serde_json::to_value` behind a trait object, so one list can hold
/// sections of different types.
mod erased {
    pub trait Serialize {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Serialize for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("config sections serialize")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> RuntimeConfig {
        RuntimeConfig::parse(
            &format!(
                r#"
version: 1
workspace: {{id: w, displayName: W, organisation: O, siteUrl: "http://x"}}
listen: {{http: "127.0.0.1:8080", federation: "127.0.0.1:8443", admin: "127.0.0.1:9090"}}
database: {{url: {{env: DB}}, poolSize: 5}}
objectStorage: {{endpoint: "http://s3", region: r, bucket: b, forcePathStyle: true, accessKeyId: {{env: K}}, secretAccessKey: {{env: S}}}}
identity: {{local: {{enabled: true, adminUsername: admin, adminPassword: {{env: P}}, minPasswordLength: 12}}}}
federation: {{tls: {{certFile: /c, keyFile: /k, caFile: /a}}}}
limits: {{maxUploadBytes: 100, maxRequestBodyBytes: 100, requestsPerMinute: 60}}
{extra}"#
            ),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn a_reload_takes_every_section_but_the_restart_ones() {
        let current = config("");
        let new = config(
            r#"
guests: [{policy: g, channels: [], invitationLifetimeSeconds: 60, uploadFiles: false, directMessages: false}]
retention: {messageDays: 30}
calls: {sfuNodes: ["http://sfu"], joinTokenKey: {env: J}, joinTokenTtlSeconds: 60, recording: false}
"#,
        );
        let mut new = new;
        new.listen.http = "127.0.0.1:9999".parse().unwrap();
        new.federation.tls.ca_file = "/other".into();
        new.limits.max_upload_bytes = 5;
        new.limits.max_request_body_bytes = 1;
        let (effective, restart) = current.reload(&new);
        assert_eq!(
            restart,
            [
                "listen",
                "federation.tls",
                "calls",
                "limits.maxRequestBodyBytes"
            ]
        );
        assert_eq!(effective.restart_sections(), current.restart_sections());
        assert_eq!(effective.guests, new.guests);
        assert_eq!(effective.retention.message_days, Some(30));
        assert_eq!(effective.limits.max_upload_bytes, 5);
        assert_eq!(effective.calls, None, "a section added needs a restart too");
        // Taking the restart sections of `new` gives `new` back: nothing else
        // was held.
        let mut whole = effective.clone();
        whole.listen = new.listen.clone();
        whole.federation.tls = new.federation.tls.clone();
        whole.calls = new.calls.clone();
        whole.limits.max_request_body_bytes = new.limits.max_request_body_bytes;
        assert_eq!(whole, new);
    }
}
