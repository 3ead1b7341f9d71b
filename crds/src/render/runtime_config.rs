//! The RuntimeConfig of a workspace's servers.
//!
//! Built from the Workspace alone; [`super::render`] adds what is attached
//! to it (policies, partners, calls, the language model). Legal holds come
//! with their controller's issue (an empty section until then).

use kube::ResourceExt;

use super::{
    paths::{self, MAX_REQUEST_BODY},
    quantity, Placement, RenderError,
};
use crate::{
    config::{
        DatabaseConfig, FederationConfig, IdentityConfig, LimitsConfig, LocalIdentityConfig,
        ObjectStorageConfig, OidcConfig, PushConfig, RetentionConfig, RuntimeConfig, SamlConfig,
        SecretSource, TeamsAppConfig, TlsFiles, WebConfig, WorkspaceIdentity,
        MICROSOFT_365_FRAME_ANCESTORS, RUNTIME_CONFIG_VERSION,
    },
    Workspace,
};

pub fn build(workspace: &Workspace, placement: &Placement) -> Result<RuntimeConfig, RenderError> {
    let file = |place| SecretSource::File(placement.secret(place));
    let path = |place| placement.secret(place);
    let spec = &workspace.spec;
    let name = workspace.name_any();
    let invalid = |field: &'static str, message: String| RenderError {
        workspace: name.clone(),
        field,
        message,
    };
    let local = &spec.identity.local;
    Ok(RuntimeConfig {
        version: RUNTIME_CONFIG_VERSION,
        workspace: WorkspaceIdentity {
            id: name.clone(),
            display_name: spec.display_name.clone().unwrap_or_else(|| name.clone()),
            organisation: spec.organisation.clone(),
            site_url: spec.site_url.clone(),
        },
        listen: placement.listen.clone(),
        database: DatabaseConfig {
            url: file(paths::DATABASE_URL),
            pool_size: spec.database.pool_size as u32,
            ca_file: spec
                .database
                .external
                .as_ref()
                .and_then(|e| e.ca_secret.as_ref())
                .map(|_| path(paths::DATABASE_CA)),
        },
        object_storage: ObjectStorageConfig {
            endpoint: spec.object_storage.endpoint.clone(),
            region: spec.object_storage.region.clone(),
            bucket: spec.object_storage.bucket.clone(),
            force_path_style: spec.object_storage.force_path_style,
            access_key_id: file(paths::S3_ACCESS_KEY),
            secret_access_key: file(paths::S3_SECRET_KEY),
            ca_file: spec
                .object_storage
                .ca_secret
                .as_ref()
                .map(|_| path(paths::S3_CA)),
            object_lock: spec.object_storage.object_lock,
        },
        identity: IdentityConfig {
            local: LocalIdentityConfig {
                enabled: local.enabled,
                admin_username: local.admin.username.clone(),
                admin_email: local.admin.email.clone(),
                // Mounted only when local login is on (see the operator's secret mounts).
                admin_password: local.enabled.then(|| file(paths::ADMIN_PASSWORD)),
                min_password_length: local.min_password_length as u32,
            },
            oidc: spec.identity.oidc.as_ref().map(|oidc| OidcConfig {
                provider: oidc.provider,
                issuer_url: oidc.issuer_url.clone().unwrap_or_else(|| {
                    format!(
                        "https://login.microsoftonline.com/{}/v2.0",
                        oidc.tenant_id.as_deref().unwrap_or("common")
                    )
                }),
                tenant_id: oidc.tenant_id.clone(),
                allowed_tenants: oidc.allowed_tenants.clone(),
                admin_groups: oidc.admin_groups.clone(),
                client_id: oidc.client_id.clone(),
                client_secret: file(paths::OIDC_CLIENT_SECRET),
                scopes: oidc.scopes.clone(),
                claim_mappings: oidc.claim_mappings.clone(),
                button_text: oidc.button_text.clone(),
            }),
            saml: spec.identity.saml.as_ref().map(|saml| SamlConfig {
                metadata_url: saml.metadata_url.clone(),
                metadata_file: saml
                    .metadata_secret
                    .as_ref()
                    .map(|_| path(paths::SAML_METADATA)),
                entity_id: saml.entity_id.clone(),
                attribute_mappings: saml.attribute_mappings.clone(),
            }),
            ranked_attributes: spec
                .user_attributes
                .ranked
                .iter()
                .map(|r| (r.name.clone(), r.levels.clone()))
                .collect(),
        },
        federation: FederationConfig {
            tls: TlsFiles {
                cert_file: path(paths::FEDERATION_CERT),
                key_file: path(paths::FEDERATION_KEY),
                ca_file: path(paths::FEDERATION_CA),
            },
            partners: Vec::new(),
        },
        guests: Vec::new(),
        access: Default::default(),
        ai: None,
        calls: None,
        translation: None,
        push: spec.push.as_ref().map(|push| PushConfig {
            mode: push.mode,
            proxy_url: push.proxy_url.clone(),
        }),
        retention: RetentionConfig {
            message_days: spec
                .retention
                .as_ref()
                .and_then(|r| r.message_days)
                .map(|d| d as u32),
            file_days: spec
                .retention
                .as_ref()
                .and_then(|r| r.file_days)
                .map(|d| d as u32),
        },
        legal_holds: Vec::new(),
        limits: LimitsConfig {
            max_upload_bytes: quantity::bytes(&spec.limits.max_upload_size)
                .map_err(|m| invalid("spec.limits.maxUploadSize", m))?,
            max_request_body_bytes: MAX_REQUEST_BODY,
            requests_per_minute: spec.limits.requests_per_minute as u32,
            connections: Default::default(),
            password_workers: 0,
        },
        web: WebConfig {
            frame_ancestors: match &spec.web.microsoft365 {
                Some(_) => MICROSOFT_365_FRAME_ANCESTORS
                    .iter()
                    .map(|origin| format!("https://{origin}"))
                    .collect(),
                None => Vec::new(),
            },
            teams: spec.web.microsoft365.as_ref().map(|m| TeamsAppConfig {
                app_id: m.app_id.clone(),
                entra_application_id: m.entra_application_id.clone(),
            }),
        },
    })
}
