//! Where a workspace server finds things in a pod: its ports, the config
//! directory, and the secret files under the secrets directory. The
//! RuntimeConfig names these paths; the operator's Deployment mounts
//! exactly these files, and `entente up` writes them under its data
//! directory in the same layout.

pub const HTTP_PORT: u16 = 8080;
pub const FEDERATION_PORT: u16 = 8443;
pub const ADMIN_PORT: u16 = 9090;
/// Prometheus metrics, apart from the API.
pub const METRICS_PORT: u16 = 9100;

pub const CONFIG_DIR: &str = "/etc/entente/runtime";
pub const CONFIG_FILE: &str = "runtime.yaml";
pub const SECRETS_DIR: &str = "/etc/entente/secrets";

/// Largest request body besides uploads (JSON), in bytes.
pub const MAX_REQUEST_BODY: u64 = 1 << 20;

/// Each secret file as `(dir, file)` below the secrets directory.
pub const DATABASE_URL: (&str, &str) = ("database", "uri");
pub const DATABASE_CA: (&str, &str) = ("database", "ca.crt");
pub const S3_ACCESS_KEY: (&str, &str) = ("s3", "access-key-id");
pub const S3_SECRET_KEY: (&str, &str) = ("s3", "secret-access-key");
pub const S3_CA: (&str, &str) = ("s3", "ca.crt");
pub const ADMIN_PASSWORD: (&str, &str) = ("admin", "password");
pub const OIDC_CLIENT_SECRET: (&str, &str) = ("oidc", "client-secret");
pub const SAML_METADATA: (&str, &str) = ("saml", "metadata.xml");
pub const FEDERATION_CERT: (&str, &str) = ("federation", "tls.crt");
pub const FEDERATION_KEY: (&str, &str) = ("federation", "tls.key");
pub const FEDERATION_CA: (&str, &str) = ("federation", "ca.crt");
