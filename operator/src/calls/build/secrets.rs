//! The CallsCluster's Secrets: the join-token key (made once, then kept)
//! and the SFUs' MediaConfig. Never ConfigMaps: the config names the key's
//! file, and the key is a secret.

use std::collections::BTreeMap;

use entente_crds::CallsCluster;
use k8s_openapi::{api::core::v1::Secret, ByteString};
use kube::ResourceExt;

use super::pod::metadata;
use crate::calls::{config_secret, token_secret, KEY};

fn secret(cc: &CallsCluster, name: String, key: &str, value: &[u8]) -> Secret {
    Secret {
        metadata: metadata(cc, name),
        data: Some(BTreeMap::from([(
            key.to_string(),
            ByteString(value.to_vec()),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// The key join tokens are signed (by the workspace servers) and checked
/// (by the SFUs) with.
pub fn join_token(cc: &CallsCluster, key: &[u8]) -> Secret {
    secret(cc, token_secret(&cc.name_any()), KEY, key)
}

/// The SFUs' MediaConfig, as `media.yaml`.
pub fn media_config(cc: &CallsCluster, yaml: &str) -> Secret {
    secret(
        cc,
        config_secret(&cc.name_any()),
        "media.yaml",
        yaml.as_bytes(),
    )
}
