//! Which Secret keys the server pod mounts, and where. The RuntimeConfig
//! names these paths; the Deployment mounts exactly these keys.

use entente_crds::Workspace;

use crate::workspace::layout::Names;
pub use entente_crds::render::paths::{
    ADMIN_PASSWORD, DATABASE_CA, DATABASE_URL, FEDERATION_CA, FEDERATION_CERT, FEDERATION_KEY,
    OIDC_CLIENT_SECRET, S3_ACCESS_KEY, S3_CA, S3_SECRET_KEY, SAML_METADATA,
};
use entente_crds::render::Placement;

/// One Secret key projected into the pod at `SECRETS_DIR/<dir>/<file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    pub secret: String,
    pub key: String,
    pub dir: &'static str,
    pub file: &'static str,
}

impl SecretMount {
    pub fn path(&self) -> String {
        Placement::pod()
            .secret((self.dir, self.file))
            .display()
            .to_string()
    }

    /// Path relative to the projected volume's root.
    pub fn relative(&self) -> String {
        format!("{}/{}", self.dir, self.file)
    }
}

fn mount(
    secret: impl Into<String>,
    key: impl Into<String>,
    dir: &'static str,
    file: &'static str,
) -> SecretMount {
    SecretMount {
        secret: secret.into(),
        key: key.into(),
        dir,
        file,
    }
}

/// Every Secret key the server of `workspace` reads.
pub fn mounts(workspace: &Workspace) -> Vec<SecretMount> {
    let names = Names::of(workspace);
    let spec = &workspace.spec;
    let mut mounts = Vec::new();
    let mut add = |secret: String, key: String, (dir, file): (&'static str, &'static str)| {
        mounts.push(mount(secret, key, dir, file));
    };
    match (&spec.database.managed, &spec.database.external) {
        (_, Some(external)) => {
            add(
                external.connection_secret.name.clone(),
                external.connection_secret.key.clone(),
                DATABASE_URL,
            );
            if let Some(ca) = &external.ca_secret {
                add(ca.name.clone(), ca.key.clone(), DATABASE_CA);
            }
        }
        _ => add(names.database_app_secret(), "uri".into(), DATABASE_URL),
    }
    let s3 = &spec.object_storage.credentials;
    add(
        s3.secret_name.clone(),
        s3.access_key_id_key.clone(),
        S3_ACCESS_KEY,
    );
    add(
        s3.secret_name.clone(),
        s3.secret_access_key_key.clone(),
        S3_SECRET_KEY,
    );
    if let Some(ca) = &spec.object_storage.ca_secret {
        add(ca.name.clone(), ca.key.clone(), S3_CA);
    }
    if spec.identity.local.enabled {
        match &spec.identity.local.admin.password_secret {
            Some(secret) => add(secret.name.clone(), secret.key.clone(), ADMIN_PASSWORD),
            None => add(names.admin_secret(), "password".into(), ADMIN_PASSWORD),
        }
    }
    if let Some(oidc) = &spec.identity.oidc {
        add(
            oidc.client_secret.name.clone(),
            oidc.client_secret.key.clone(),
            OIDC_CLIENT_SECRET,
        );
    }
    if let Some(metadata) = spec
        .identity
        .saml
        .as_ref()
        .and_then(|s| s.metadata_secret.as_ref())
    {
        add(metadata.name.clone(), metadata.key.clone(), SAML_METADATA);
    }
    for (key, place) in [
        ("tls.crt", FEDERATION_CERT),
        ("tls.key", FEDERATION_KEY),
        ("ca.crt", FEDERATION_CA),
    ] {
        add(names.federation_tls_secret(), key.into(), place);
    }
    mounts
}
