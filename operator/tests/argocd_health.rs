//! The Argo CD health script, run in a real Lua interpreter.

use mlua::{Lua, LuaSerdeExt};
use serde_json::{json, Value};

fn health(object: Value) -> (String, String) {
    let script = std::fs::read_to_string(format!(
        "{}/../charts/entente/argocd/health.lua",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let lua = Lua::new();
    lua.globals()
        .set("obj", lua.to_value(&object).unwrap())
        .unwrap();
    let result: mlua::Table = lua.load(&script).eval().unwrap();
    (
        result.get("status").unwrap(),
        result.get("message").unwrap(),
    )
}

fn workspace(generation: i64, status: Value) -> Value {
    json!({"apiVersion": "entente.dev/v1alpha1", "kind": "Workspace", "metadata": {"name": "w", "generation": generation}, "status": status})
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-11-22T00:00:00Z"})
}

#[test]
fn the_mapping() {
    let cases = [
        (
            json!({"apiVersion": "entente.dev/v1alpha1", "kind": "Workspace", "metadata": {"name": "w", "generation": 1}}),
            "Progressing",
        ),
        (
            workspace(
                2,
                json!({"observedGeneration": 1, "conditions": [condition("Ready", "True", "Ready", "ok")]}),
            ),
            "Progressing",
        ),
        (
            workspace(
                1,
                json!({"observedGeneration": 1, "conditions": [condition("Ready", "True", "Ready", "3 of 3 replicas ready")]}),
            ),
            "Healthy",
        ),
        (
            workspace(
                1,
                json!({"observedGeneration": 1, "conditions": [condition("Ready", "True", "Ready", "ok"), condition("Degraded", "True", "DatabaseUnavailable", "CloudNativePG is not installed")]}),
            ),
            "Degraded",
        ),
        (
            workspace(
                1,
                json!({"observedGeneration": 1, "conditions": [condition("Ready", "False", "Rolling", "1 of 3"), condition("Reconciling", "True", "Rolling", "rolling out")]}),
            ),
            "Progressing",
        ),
        (
            workspace(
                1,
                json!({"observedGeneration": 1, "conditions": [condition("Ready", "False", "NotImplemented", "not built yet")]}),
            ),
            "Suspended",
        ),
    ];
    for (object, expected) in cases {
        let (status, message) = health(object.clone());
        assert_eq!(status, expected, "{object}: {message}");
        assert!(!message.is_empty());
    }
    let (_, message) = health(cases_degraded());
    assert_eq!(
        message,
        "DatabaseUnavailable: CloudNativePG is not installed"
    );
}

fn cases_degraded() -> Value {
    workspace(
        1,
        json!({"observedGeneration": 1, "conditions": [condition("Degraded", "True", "DatabaseUnavailable", "CloudNativePG is not installed")]}),
    )
}

/// The conditions the operator actually writes for each verdict, read by the
/// script: what Argo CD shows is what the operator meant.
#[test]
fn every_verdict_the_operator_writes_maps_as_meant() {
    use entente_operator::reconcile::{conditions::merge, Health};
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let cases = [
        (
            Health::Ready {
                message: "1/1 servers ready".into(),
            },
            "Healthy",
        ),
        (Health::progressing("Migrating", "migrating"), "Progressing"),
        (
            Health::stalled("MigrationFailed", "the Job failed"),
            "Degraded",
        ),
        (
            Health::failing("ObjectStoreUnavailable", "timeout"),
            "Degraded",
        ),
        (
            Health::NotImplemented {
                message: "later".into(),
            },
            "Suspended",
        ),
    ];
    for (verdict, expected) in cases {
        let conditions = merge(&[], &verdict, vec![], Some(3), &now);
        let object = workspace(
            3,
            json!({"observedGeneration": 3, "conditions": conditions}),
        );
        let (status, message) = health(object);
        assert_eq!(status, expected, "{verdict:?}: {message}");
    }
}
