//! Calls rendered into a Workspace's RuntimeConfig: the CallsCluster its
//! `spec.features.calls` names, its SFU nodes' signalling URLs, and the
//! join-token key as a file beside the config.

use crate::{
    config::{CallsConfig, RuntimeConfig, SecretSource},
    CallsCluster, Workspace,
};

/// The key's file name, beside `runtime.yaml` in a workspace's runtime Secret.
pub const KEY_FILE: &str = "calls-join-token.key";

/// Renders calls into a Workspace's config: the CallsCluster its
/// `spec.features.calls` names, once its key exists. Returns the file to
/// put beside the config (the key).
pub fn attach(
    config: &mut RuntimeConfig,
    workspace: &Workspace,
    cc: Option<(&CallsCluster, &[String])>,
    key: Option<&[u8]>,
    config_dir: &std::path::Path,
) -> Vec<(String, Vec<u8>)> {
    let (Some(feature), Some((cc, nodes)), Some(key)) = (&workspace.spec.features.calls, cc, key)
    else {
        return Vec::new();
    };
    config.calls = Some(CallsConfig {
        sfu_nodes: nodes.to_vec(),
        join_token_key: SecretSource::File(config_dir.join(KEY_FILE)),
        join_token_ttl_seconds: seconds(&cc.spec.join_token_ttl),
        recording: feature.recording,
    });
    vec![(KEY_FILE.to_string(), key.to_vec())]
}

/// `60s`, `1m30s`, `10m` in seconds (the CRD allows only these forms).
fn seconds(duration: &str) -> u32 {
    let mut total = 0u32;
    let mut number = 0u32;
    for c in duration.chars() {
        match c {
            '0'..='9' => number = number * 10 + c.to_digit(10).unwrap_or(0),
            'm' => (total, number) = (total + number * 60, 0),
            's' => (total, number) = (total + number, 0),
            _ => {}
        }
    }
    total.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_in_the_forms_the_crd_allows() {
        assert_eq!(seconds("60s"), 60);
        assert_eq!(seconds("1m30s"), 90);
        assert_eq!(seconds("10m"), 600);
    }
}
