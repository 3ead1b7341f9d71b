//! The labels every object the operator makes carries, and the selectors
//! that find them again (to route traffic, and to prune what is no longer
//! desired).

use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "entente-operator";

/// Labels of every child of `instance` (a Workspace, CallsCluster, …) for `component`.
pub fn labels(instance: &str, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector(instance, component);
    labels.insert("app.kubernetes.io/managed-by".into(), MANAGED_BY.into());
    labels.insert("app.kubernetes.io/part-of".into(), "entente".into());
    labels
}

/// The subset that selects `component`'s pods: stable across versions, so a
/// Deployment's selector never has to change.
pub fn selector(instance: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "entente".to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            instance.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
    ])
}

/// `key=value,…` form of a selector, for the scale subresource's `status.selector`.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
