//! Where things are in a workspace server pod: ports, object names, and the
//! paths secrets are mounted at. The RuntimeConfig builder and the Deployment
//! builder both read them here, so the config always names files the pod has.

use entente_crds::Workspace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

pub const COMPONENT: &str = "server";
pub use entente_crds::render::paths::{
    ADMIN_PORT, CONFIG_DIR, CONFIG_FILE, FEDERATION_PORT, HTTP_PORT, MAX_REQUEST_BODY,
    METRICS_PORT, SECRETS_DIR,
};

/// The default server image when the spec names none.
pub fn default_image() -> String {
    format!(
        "registry.example/entente/entente-server:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Names of the objects the operator makes for a workspace.
pub struct Names {
    pub workspace: String,
}

impl Names {
    pub fn of(workspace: &Workspace) -> Names {
        Names {
            workspace: workspace.name_any(),
        }
    }

    pub fn server(&self) -> String {
        self.workspace.clone()
    }
    pub fn runtime_secret(&self) -> String {
        format!("{}-runtime", self.workspace)
    }
    pub fn admin_secret(&self) -> String {
        format!("{}-admin", self.workspace)
    }
    pub fn federation_tls_secret(&self) -> String {
        format!("{}-federation-tls", self.workspace)
    }
    /// The CloudNativePG Cluster of a managed database.
    pub fn database_cluster(&self) -> String {
        format!("{}-db", self.workspace)
    }
    /// CloudNativePG's application Secret (keys `uri`, `username`, `password`, …).
    pub fn database_app_secret(&self) -> String {
        format!("{}-db-app", self.workspace)
    }
    pub fn federation_service(&self) -> String {
        format!("{}-federation", self.workspace)
    }
    pub fn admin_service(&self) -> String {
        format!("{}-admin", self.workspace)
    }
}

/// Metadata of a child object `name` of `workspace`: its namespace and the
/// operator's labels for `component`, by which it is found again and pruned.
pub fn metadata(workspace: &Workspace, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: workspace.namespace(),
        labels: Some(crate::labels::labels(&workspace.name_any(), component)),
        ..Default::default()
    }
}

impl Names {
    /// The federation CA (certificate and key); the key never enters a pod.
    pub fn federation_ca_secret(&self) -> String {
        format!("{}-federation-ca", self.workspace)
    }
}

/// A short, stable digest of `text` (FNV-1a), for object names and
/// annotations that must change exactly when `text` does.
pub fn digest(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::digest;

    #[test]
    fn the_digest_is_stable_and_short() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("registry/entente:1"), digest("registry/entente:2"));
        assert_eq!(digest("x").len(), 10);
    }
}
