//! The operator's Helm chart, rendered by Helm's own engine (Helm's Go SDK via
//! the helm-python-sdk wheel; scripts/setup installs it).

use std::{collections::BTreeSet, path::PathBuf, process::Command};

use k8s_openapi::api::{
    apps::v1::Deployment,
    rbac::v1::{PolicyRule, Role},
};
use serde_json::{json, Value};

fn chart_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../charts/entente")
}

struct Rendered {
    objects: Vec<Value>,
    crds: Vec<String>,
    lint: Vec<Value>,
}

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn one<T: serde::de::DeserializeOwned>(&self, kind: &str) -> T {
        let found = self.of_kind(kind);
        assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
        serde_json::from_value(found[0].clone()).unwrap()
    }
}

/// Renders with `values`; Err carries Helm's message when it refuses them.
fn render(values: Value) -> Result<Rendered, String> {
    let script =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/helm_render.py");
    let python = std::env::var("ENTENTE_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .arg(&script)
        .arg(chart_dir())
        .arg(values.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'helm_python'"),
        "Helm's engine is not installed: `pip install helm-python-sdk` (scripts/setup does)"
    );
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("the renderer failed ({e}):\n{stdout}\n{stderr}"));
    if let Some(error) = report["error"].as_str() {
        return Err(error.to_string());
    }
    let mut objects = Vec::new();
    for (path, text) in report["manifests"].as_object().unwrap() {
        if path.ends_with("NOTES.txt") {
            continue;
        }
        for document in serde_yaml::Deserializer::from_str(text.as_str().unwrap()) {
            let value: Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("{path} renders invalid YAML: {e}"));
            if !value.is_null() {
                objects.push(value);
            }
        }
    }
    Ok(Rendered {
        objects,
        crds: serde_json::from_value(report["crds"].clone()).unwrap(),
        lint: serde_json::from_value(report["lint"].clone()).unwrap(),
    })
}

fn kinds(rendered: &Rendered) -> Vec<String> {
    let mut kinds: Vec<String> = rendered
        .objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn defaults_render_lint_clean_with_every_crd() {
    let rendered = render(json!({})).unwrap();
    assert!(
        rendered.lint.is_empty(),
        "helm lint --strict: {:?}",
        rendered.lint
    );
    assert_eq!(
        kinds(&rendered),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    let expected: Vec<String> = entente_crds::crd::all()
        .iter()
        .map(|crd| format!("entente/crds/{}", entente_crds::crd::file_name(crd)))
        .collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(
        rendered.crds, expected,
        "the chart ships every generated CRD"
    );
}

#[test]
fn the_operator_pod_is_locked_down() {
    let deployment: Deployment = render(json!({})).unwrap().one("Deployment");
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.unwrap().type_,
        "RuntimeDefault"
    );
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(
        probe_path(&container.liveness_probe).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        probe_path(&container.readiness_probe).as_deref(),
        Some("/readyz")
    );
    let resources = container.resources.clone().unwrap();
    assert!(resources.requests.is_some() && resources.limits.is_some());
}

/// Verbs no rule may grant: they allow a holder to exceed its own rights.
const DANGEROUS: [&str; 4] = ["*", "escalate", "bind", "impersonate"];

fn check_rules(rules: &[PolicyRule]) {
    for rule in rules {
        for verb in &rule.verbs {
            assert!(
                !DANGEROUS.contains(&verb.as_str()),
                "rule grants {verb}: {rule:?}"
            );
        }
        for resource in rule.resources.iter().flatten() {
            assert!(resource != "*", "wildcard resource: {rule:?}");
            assert!(
                !resource.starts_with("pods/"),
                "no exec/attach/portforward: {rule:?}"
            );
        }
        for group in rule.api_groups.iter().flatten() {
            assert!(group != "*", "wildcard group: {rule:?}");
            assert!(
                !group.starts_with("rbac.") && !group.starts_with("apiextensions."),
                "{rule:?}"
            );
        }
    }
}

/// A rule as a comparable value: (group, sorted resources, sorted verbs).
fn normal(
    group: &str,
    resources: &[String],
    verbs: &[String],
) -> (String, Vec<String>, Vec<String>) {
    let mut resources = resources.to_vec();
    resources.sort();
    let mut verbs = verbs.to_vec();
    verbs.sort();
    (group.to_string(), resources, verbs)
}

fn rendered_rules(rules: &[PolicyRule]) -> BTreeSet<(String, Vec<String>, Vec<String>)> {
    rules
        .iter()
        .map(|r| {
            let groups = r.api_groups.clone().unwrap_or_default();
            assert_eq!(groups.len(), 1, "one API group per rule: {r:?}");
            normal(
                &groups[0],
                r.resources.as_deref().unwrap_or_default(),
                &r.verbs,
            )
        })
        .collect()
}

fn code_rules(
    rules: &[entente_operator::rbac::Rule],
) -> BTreeSet<(String, Vec<String>, Vec<String>)> {
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    rules
        .iter()
        .map(|r| normal(r.group, &owned(r.resources), &owned(r.verbs)))
        .collect()
}

#[test]
fn rbac_is_exactly_what_the_operator_uses() {
    let rendered = render(json!({})).unwrap();
    let cluster_role: k8s_openapi::api::rbac::v1::ClusterRole = rendered.one("ClusterRole");
    let rules = cluster_role.rules.unwrap();
    check_rules(&rules);
    assert_eq!(
        rendered_rules(&rules),
        code_rules(entente_operator::rbac::RULES),
        "the chart's ClusterRole and operator/src/rbac.rs must grant the same"
    );
    // Leader election is a namespaced Role in the release namespace, and only that.
    let leader: Role = rendered.one("Role");
    assert_eq!(leader.metadata.namespace.as_deref(), Some("entente-system"));
    assert_eq!(
        rendered_rules(&leader.rules.unwrap()),
        code_rules(&[entente_operator::rbac::LEADER_ELECTION])
    );
}

#[test]
fn every_rbac_rule_says_why() {
    let source = std::fs::read_to_string(chart_dir().join("templates/rbac.yaml")).unwrap();
    let lines: Vec<&str> = source.lines().map(str::trim).collect();
    let mut rules = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("- apiGroups:") {
            rules += 1;
            let previous = lines[..i].iter().rev().find(|l| !l.is_empty()).unwrap();
            assert!(
                previous.starts_with('#'),
                "rule at line {} has no comment above it",
                i + 1
            );
        }
    }
    assert!(
        rules >= entente_operator::rbac::RULES.len(),
        "found only {rules} rules"
    );
}

#[test]
fn watching_chosen_namespaces_grants_nothing_cluster_wide() {
    let rendered = render(json!({"watchNamespaces": ["alpha", "bravo"]})).unwrap();
    assert!(rendered.of_kind("ClusterRole").is_empty());
    assert!(rendered.of_kind("ClusterRoleBinding").is_empty());
    let namespaces: BTreeSet<&str> = rendered
        .of_kind("Role")
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["alpha", "bravo", "entente-system"].into());
    for role in rendered.of_kind("Role") {
        let role: Role = serde_json::from_value(role.clone()).unwrap();
        check_rules(&role.rules.unwrap());
    }
    let deployment: Deployment = rendered.one("Deployment");
    let args = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert!(
        args.contains(&"--watch-namespaces=alpha,bravo".to_string()),
        "{args:?}"
    );
}

#[test]
fn one_replica_has_no_disruption_budget() {
    let rendered = render(json!({"replicaCount": 1})).unwrap();
    assert!(rendered.of_kind("PodDisruptionBudget").is_empty());
}

#[test]
fn bad_values_are_refused_by_the_schema() {
    for (values, field) in [
        (json!({"replicaCount": "two"}), "replicaCount"),
        (json!({"replicaCount": 0}), "replicaCount"),
        (
            json!({"watchNamespaces": ["Not_A_Namespace"]}),
            "watchNamespaces",
        ),
        (json!({"image": {"pullPolicy": "Sometimes"}}), "pullPolicy"),
        (json!({"replicaCounts": 3}), "replicaCounts"),
    ] {
        let error = render(values.clone())
            .err()
            .unwrap_or_else(|| panic!("{values} was accepted"));
        assert!(error.contains(field), "{values}: {error}");
    }
}
