//! The generated CRDs: committed output matches the code, every schema is
//! structural, every CEL rule compiles within the API server's cost budget,
//! and every kind carries the names, columns and subresources an admin expects.

use std::{collections::BTreeSet, fs, path::Path};

use entente_crds::crd;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{json, Value};

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .unwrap()
}

#[test]
fn committed_crds_match_the_code() {
    let dir =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../charts/entente/crds");
    let mut expected = BTreeSet::new();
    let mut stale = Vec::new();
    for crd in crd::all() {
        let name = crd::file_name(&crd);
        let committed = fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if committed != crd::to_yaml(&crd) {
            stale.push(name.clone());
        }
        expected.insert(name);
    }
    let present: BTreeSet<String> = fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let extra: Vec<_> = present.difference(&expected).collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "charts/entente/crds is out of date (differs: {stale:?}, not generated: {extra:?}); \
         run `cargo run -p entente-crds --bin crdgen` and commit the result"
    );
}

#[test]
fn every_kind_is_namespaced_with_names_columns_and_subresources() {
    let crds = crd::all();
    assert_eq!(crds.len(), 8);
    let mut short_names = BTreeSet::new();
    for crd in &crds {
        let kind = &crd.spec.names.kind;
        assert_eq!(crd.spec.group, "entente.dev", "{kind}");
        assert_eq!(crd.spec.scope, "Namespaced", "{kind}");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["entente".to_string()][..]),
            "{kind}"
        );
        let shorts = crd.spec.names.short_names.clone().unwrap_or_default();
        assert_eq!(shorts.len(), 1, "{kind} has one short name");
        assert!(
            short_names.insert(shorts[0].clone()),
            "short name {} used twice",
            shorts[0]
        );

        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        let subresources = version.subresources.as_ref().expect("subresources");
        assert!(
            subresources.status.is_some(),
            "{kind} has a status subresource"
        );
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert!(columns.contains(&"Ready"), "{kind} shows Ready");
        assert_eq!(columns.last(), Some(&"Age"), "{kind} ends with Age");

        let schema = schema_of(crd);
        let status = &schema["properties"]["status"]["properties"];
        assert_eq!(status["observedGeneration"]["type"], "integer", "{kind}");
        let conditions = &status["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            json!(["type"]),
            "{kind}"
        );
        let condition = &conditions["items"]["properties"];
        for field in [
            "type",
            "status",
            "reason",
            "message",
            "lastTransitionTime",
            "observedGeneration",
        ] {
            assert!(
                condition.get(field).is_some(),
                "{kind} conditions carry {field}"
            );
        }
    }
    let expected: BTreeSet<_> = ["ws", "pc", "gp", "ap", "cc", "lm", "br", "lh"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(short_names, expected);
}

#[test]
fn workspace_scales_through_the_scale_subresource() {
    let crd = crd::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "Workspace")
        .unwrap();
    let scale = crd.spec.versions[0]
        .subresources
        .as_ref()
        .and_then(|s| s.scale.as_ref())
        .expect("kubectl scale ws works");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
}

#[test]
fn every_generated_schema_is_structural() {
    let mut problems = Vec::new();
    for crd in crd::all() {
        let kind = crd.spec.names.kind.clone();
        structural::check_root(&schema_of(&crd), &mut |path, problem| {
            problems.push(format!("{kind} {path}: {problem}"))
        });
    }
    assert!(
        problems.is_empty(),
        "non-structural schemas:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_default_satisfies_its_own_schema() {
    // The API server refuses a CRD whose defaults do not validate.
    fn walk(node: &Value, path: &str, problems: &mut Vec<String>, defaults: &mut usize) {
        if let Some(default) = node.get("default") {
            *defaults += 1;
            for e in entente_crds::validate::schema_errors(node, default) {
                problems.push(format!("{path}: default {default}: {e}"));
            }
        }
        for (name, child) in node
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            walk(child, &format!("{path}.{name}"), problems, defaults);
        }
        if let Some(items) = node.get("items") {
            walk(items, &format!("{path}[]"), problems, defaults);
        }
    }
    let mut problems = Vec::new();
    let mut defaults = 0;
    for crd in crd::all() {
        walk(
            &schema_of(&crd),
            &crd.spec.names.kind,
            &mut problems,
            &mut defaults,
        );
    }
    assert!(defaults >= 50, "only {defaults} defaults found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_cel_rule_compiles_and_fits_the_cost_budget() {
    let mut problems = Vec::new();
    let mut rules = 0;
    for crd in crd::all() {
        let kind = crd.spec.names.kind.clone();
        let schema = schema_of(&crd);
        let compiled = kube_cel::compile_schema(&schema);
        walk_compiled(&compiled, &kind, &mut problems, &mut rules);
    }
    assert!(
        rules >= 40,
        "only {rules} CEL rules found; did rules go missing?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn walk_compiled(
    node: &kube_cel::CompiledSchema,
    path: &str,
    problems: &mut Vec<String>,
    rules: &mut usize,
) {
    for result in &node.validations {
        *rules += 1;
        match result {
            Err(e) => problems.push(format!("{path}: rule does not compile: {e}")),
            Ok(rule) => {
                // Only the cost estimate: kube-cel's scope analysis mistakes
                // comprehension variables (`self.all(c, …)`) for unknown ones.
                // Unknown variables surface anyway when the examples evaluate the rules.
                for warning in kube_cel::estimate_rule_cost(&rule.rule.rule, node) {
                    problems.push(format!("{path}: {}: {}", rule.rule.rule, warning.message));
                }
            }
        }
    }
    for (name, child) in &node.properties {
        walk_compiled(child, &format!("{path}.{name}"), problems, rules);
    }
    if let Some(items) = &node.items {
        walk_compiled(items, &format!("{path}[]"), problems, rules);
    }
    if let Some(additional) = &node.additional_properties {
        walk_compiled(additional, &format!("{path}{{}}"), problems, rules);
    }
}

/// The structural-schema rules of the API server
/// (apiextensions `validation.ValidateStructural` and friends).
mod structural {
    use serde_json::Value;

    const JUNCTORS: [&str; 4] = ["allOf", "anyOf", "oneOf", "not"];
    /// What a junctor branch may not carry: only value validations are allowed there.
    const FORBIDDEN_IN_JUNCTORS: [&str; 9] = [
        "type",
        "description",
        "default",
        "nullable",
        "additionalProperties",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-list-type",
        "title",
    ];

    pub fn check_root(schema: &Value, report: &mut impl FnMut(&str, String)) {
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            report("", "the root must be of type object".into());
        }
        if let Some(meta) = schema.pointer("/properties/metadata") {
            let allowed = ["type", "properties", "description"];
            for key in meta.as_object().into_iter().flatten().map(|(k, _)| k) {
                if !allowed.contains(&key.as_str()) {
                    report(
                        "metadata",
                        format!("metadata may only restrict name and generateName, found {key}"),
                    );
                }
            }
            for key in meta
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if key != "name" && key != "generateName" {
                    report(
                        "metadata",
                        format!("metadata may only restrict name and generateName, found {key}"),
                    );
                }
            }
        }
        check(schema, "", report);
    }

    pub fn check(node: &Value, path: &str, report: &mut impl FnMut(&str, String)) {
        let Some(map) = node.as_object() else {
            report(path, "a schema must be an object".into());
            return;
        };
        let flag = |key: &str| map.get(key) == Some(&Value::Bool(true));
        let ty = map.get("type").and_then(Value::as_str);
        let int_or_string = flag("x-kubernetes-int-or-string");
        let preserve = flag("x-kubernetes-preserve-unknown-fields");

        if ty.is_none_or(str::is_empty) && !int_or_string && !preserve {
            report(path, "no type (only x-kubernetes-int-or-string or x-kubernetes-preserve-unknown-fields nodes may omit it)".into());
        }
        for forbidden in [
            "$ref",
            "definitions",
            "$defs",
            "uniqueItems",
            "patternProperties",
            "dependencies",
            "id",
            "$schema",
        ] {
            if map.contains_key(forbidden) {
                report(path, format!("{forbidden} is not allowed in a CRD schema"));
            }
        }
        if map.contains_key("nullable") && ty.is_none() {
            report(path, "nullable without a type".into());
        }
        if map.contains_key("properties") && map.contains_key("additionalProperties") {
            report(
                path,
                "properties and additionalProperties are mutually exclusive".into(),
            );
        }
        if map.get("additionalProperties") == Some(&Value::Bool(false)) {
            report(path, "additionalProperties: false is not allowed".into());
        }
        if ty == Some("object")
            && !map.contains_key("properties")
            && !map.contains_key("additionalProperties")
            && !preserve
        {
            report(path, "an object with no properties, no additionalProperties and no x-kubernetes-preserve-unknown-fields: everything in it is pruned".into());
        }
        if ty == Some("array") && !map.contains_key("items") {
            report(path, "an array without items".into());
        }
        match map.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => check_list_map_keys(map, path, report),
            _ if map.contains_key("x-kubernetes-list-map-keys") => report(
                path,
                "x-kubernetes-list-map-keys without x-kubernetes-list-type: map".into(),
            ),
            _ => {}
        }

        for junctor in JUNCTORS {
            let branches: Vec<&Value> = match map.get(junctor) {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(single) => vec![single],
                None => continue,
            };
            for branch in branches {
                check_junctor_branch(branch, &format!("{path}.{junctor}"), int_or_string, report);
            }
        }
        if let Some(Value::Object(properties)) = map.get("properties") {
            for (name, child) in properties {
                check(child, &format!("{path}.{name}"), report);
            }
        }
        if let Some(items) = map.get("items") {
            check(items, &format!("{path}[]"), report);
        }
        if let Some(additional @ Value::Object(_)) = map.get("additionalProperties") {
            check(additional, &format!("{path}{{}}"), report);
        }
    }

    fn check_list_map_keys(
        map: &serde_json::Map<String, Value>,
        path: &str,
        report: &mut impl FnMut(&str, String),
    ) {
        let keys: Vec<&str> = map
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if keys.is_empty() {
            report(
                path,
                "x-kubernetes-list-type: map needs x-kubernetes-list-map-keys".into(),
            );
        }
        let item = map.get("items");
        let required: Vec<&str> = item
            .and_then(|i| i.get("required"))
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for key in keys {
            let key_schema = item.and_then(|i| i.pointer(&format!("/properties/{key}")));
            match key_schema {
                None => report(
                    path,
                    format!("list map key {key} is not a property of the items"),
                ),
                Some(s) => {
                    let scalar = matches!(
                        s.get("type").and_then(Value::as_str),
                        Some("string" | "integer" | "number" | "boolean")
                    );
                    if !scalar {
                        report(path, format!("list map key {key} must be a scalar"));
                    }
                    if !required.contains(&key) && s.get("default").is_none() {
                        report(
                            path,
                            format!("list map key {key} must be required or have a default"),
                        );
                    }
                }
            }
        }
    }

    fn check_junctor_branch(
        branch: &Value,
        path: &str,
        int_or_string: bool,
        report: &mut impl FnMut(&str, String),
    ) {
        let Some(map) = branch.as_object() else {
            report(path, "a junctor branch must be a schema".into());
            return;
        };
        for key in FORBIDDEN_IN_JUNCTORS {
            // `anyOf: [{type: integer}, {type: string}]` is the one allowed
            // use of types in a junctor: the int-or-string pattern.
            if key == "type" && int_or_string {
                continue;
            }
            if map.contains_key(key) {
                report(
                    path,
                    format!("{key} inside allOf/anyOf/oneOf/not is not structural"),
                );
            }
        }
        if let Some(Value::Object(properties)) = map.get("properties") {
            for (name, child) in properties {
                check_junctor_branch(child, &format!("{path}.{name}"), false, report);
            }
        }
        if let Some(items) = map.get("items") {
            check_junctor_branch(items, &format!("{path}[]"), false, report);
        }
    }
}

/// The checker itself must catch what it claims to; otherwise the test above proves nothing.
#[test]
fn the_structural_checker_rejects_non_structural_schemas() {
    let cases = [
        (
            json!({"type": "object", "properties": {"a": {"description": "no type"}}}),
            "no type",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "object"}}}),
            "everything in it is pruned",
        ),
        (
            json!({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "object"}]}}}),
            "type inside allOf/anyOf/oneOf/not",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string", "oneOf": [{"default": "x"}]}}}),
            "default inside",
        ),
        (
            json!({"type": "object", "properties": {"a": {"nullable": true}}}),
            "nullable without a type",
        ),
        (
            json!({"type": "object", "properties": {"a": {"$ref": "#/definitions/X"}}}),
            "$ref is not allowed",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "object", "additionalProperties": false, "properties": {"b": {"type": "string"}}}}}),
            "additionalProperties: false",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}),
            "must be required or have a default",
        ),
        (
            json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}}),
            "metadata may only restrict name and generateName",
        ),
    ];
    for (schema, expected) in cases {
        let mut found = Vec::new();
        structural::check_root(&schema, &mut |path, problem| {
            found.push(format!("{path}: {problem}"))
        });
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "expected {expected:?} for {schema}, got {found:?}"
        );
    }
    // And accepts what is allowed: int-or-string and preserve-unknown-fields nodes.
    let mut found = Vec::new();
    structural::check_root(
        &json!({"type": "object", "properties": {
            "q": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "raw": {"x-kubernetes-preserve-unknown-fields": true}
        }}),
        &mut |path, problem| found.push(format!("{path}: {problem}")),
    );
    assert!(found.is_empty(), "{found:?}");
}
