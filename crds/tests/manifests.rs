//! Every example a user would apply is accepted, and every deliberately broken
//! manifest is refused with the message an admin needs to fix it.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use entente_crds::validate::{parse_manifests, validate_object, ManifestError, Resource};
use serde_json::json;

fn repo() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("..")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn load_example(name: &str) -> Vec<Resource> {
    let dir = repo().join("examples").join(name);
    let files = yaml_files(&dir);
    assert!(!files.is_empty(), "example {name} has no manifests");
    let mut resources = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for result in parse_manifests(&text, &file.display().to_string()) {
            match result {
                Ok(resource) => resources.push(resource),
                Err(e) => panic!("example {name} is not valid:\n{e}"),
            }
        }
    }
    resources
}

fn kinds(resources: &[Resource]) -> BTreeSet<&'static str> {
    resources.iter().map(Resource::kind).collect()
}

#[test]
fn mission_partner_example_declares_every_kind_but_legal_hold() {
    let resources = load_example("mission-partner");
    let expected: BTreeSet<_> = [
        "Workspace",
        "PartnerConnection",
        "GuestPolicy",
        "AccessPolicy",
        "CallsCluster",
        "LanguageModel",
        "Bridge",
    ]
    .into();
    assert_eq!(kinds(&resources), expected);

    let workspaces: Vec<_> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::Workspace(w) => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(workspaces.len(), 2, "two nations, each with a workspace");

    // Both directions of the partnership, one of them sharing a read-only channel.
    let connections: Vec<_> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::PartnerConnection(p) => Some(p),
            _ => None,
        })
        .collect();
    let pairs: BTreeSet<_> = connections
        .iter()
        .map(|p| {
            (
                p.spec.workspace_ref.as_str(),
                p.spec.partner.workspace_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [("nation-a", "nation-b"), ("nation-b", "nation-a")].into()
    );
    assert!(connections.iter().any(|p| p
        .spec
        .channels
        .iter()
        .any(|c| c.mode == entente_crds::partner_connection::ShareMode::ReadOnly)));

    // Every reference resolves to an object of the example.
    let names = |kind: &str| -> BTreeSet<String> {
        resources
            .iter()
            .filter(|r| r.kind() == kind)
            .map(|r| r.name().to_string())
            .collect()
    };
    let workspace_names = names("Workspace");
    for r in &resources {
        let workspace_ref = match r {
            Resource::PartnerConnection(o) => Some(&o.spec.workspace_ref),
            Resource::GuestPolicy(o) => Some(&o.spec.workspace_ref),
            Resource::AccessPolicy(o) => Some(&o.spec.workspace_ref),
            Resource::Bridge(o) => Some(&o.spec.workspace_ref),
            _ => None,
        };
        if let Some(w) = workspace_ref {
            assert!(
                workspace_names.contains(w),
                "{} {} refers to missing workspace {w}",
                r.kind(),
                r.name()
            );
        }
    }
    for w in &workspaces {
        if let Some(calls) = &w.spec.features.calls {
            assert!(names("CallsCluster").contains(&calls.calls_cluster_ref));
        }
        if let Some(ai) = &w.spec.features.ai {
            assert!(names("LanguageModel").contains(&ai.language_model_ref));
        }
    }
}

#[test]
fn sovereign_m365_example_uses_entra_id_id_only_push_and_external_stores() {
    let resources = load_example("sovereign-m365");
    assert_eq!(
        kinds(&resources),
        ["Workspace", "LanguageModel", "LegalHold"].into()
    );
    let Some(Resource::Workspace(ws)) = resources.iter().find(|r| r.kind() == "Workspace") else {
        unreachable!()
    };
    let oidc = ws.spec.identity.oidc.as_ref().expect("Entra ID sign-in");
    assert_eq!(
        oidc.provider,
        entente_crds::workspace::OidcProvider::EntraId
    );
    assert_eq!(
        ws.spec.push.as_ref().map(|p| p.mode),
        Some(entente_crds::workspace::PushMode::IdOnly)
    );
    assert!(ws.spec.database.external.is_some());
    assert!(ws.spec.retention.is_some());
}

#[test]
fn edge_example_has_tight_sync_limits() {
    let resources = load_example("edge-ddil");
    let Some(Resource::PartnerConnection(pc)) =
        resources.iter().find(|r| r.kind() == "PartnerConnection")
    else {
        panic!("the edge example links to headquarters")
    };
    assert_eq!(pc.spec.sync.bandwidth_limit.as_deref(), Some("16Ki"));
    let Some(Resource::Workspace(ws)) = resources.iter().find(|r| r.kind() == "Workspace") else {
        panic!("the edge example has a workspace")
    };
    assert_eq!(ws.spec.replicas, 1);
}

#[test]
fn defaults_are_applied_as_the_api_server_would() {
    let resources = load_example("edge-ddil");
    let Some(Resource::Workspace(ws)) = resources.iter().find(|r| r.kind() == "Workspace") else {
        unreachable!()
    };
    // Not written in the manifest, filled from the schema's defaults.
    assert_eq!(ws.spec.database.pool_size, 20);
    assert_eq!(ws.spec.object_storage.region, "us-east-1");
    assert!(ws.spec.object_storage.force_path_style);
    assert!(ws.spec.identity.local.enabled);
    assert_eq!(ws.spec.federation.certificate_duration, "2160h");
}

/// What the API server fills in from the schema's defaults must be what the
/// code assumes for an absent field (its serde default): otherwise the
/// operator and `kubectl get -o yaml` would disagree about the same object.
#[test]
fn schema_defaults_agree_with_the_code_defaults() {
    use entente_crds::*;
    fn same<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        raw: &serde_json::Value,
        validated: &T,
    ) {
        let from_code: T = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(&from_code, validated);
    }
    let mut checked = 0;
    for example in ["mission-partner", "sovereign-m365", "edge-ddil"] {
        for file in yaml_files(&repo().join("examples").join(example)) {
            let text = fs::read_to_string(&file).unwrap();
            for document in serde_yaml::Deserializer::from_str(&text) {
                let raw: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
                let validated = validate_object(&raw, None, "example").unwrap();
                match &validated {
                    Resource::Workspace(v) => same::<Workspace>(&raw, v),
                    Resource::PartnerConnection(v) => same::<PartnerConnection>(&raw, v),
                    Resource::GuestPolicy(v) => same::<GuestPolicy>(&raw, v),
                    Resource::AccessPolicy(v) => same::<AccessPolicy>(&raw, v),
                    Resource::CallsCluster(v) => same::<CallsCluster>(&raw, v),
                    Resource::LanguageModel(v) => same::<LanguageModel>(&raw, v),
                    Resource::Bridge(v) => same::<Bridge>(&raw, v),
                    Resource::LegalHold(v) => same::<LegalHold>(&raw, v),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 14);
}

/// Each file in tests/invalid/ starts with `# expect: …` lines; every line must
/// appear in the error, and the manifest must be refused.
#[test]
fn broken_manifests_are_refused_with_an_actionable_message() {
    let dir =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/invalid");
    let files = yaml_files(&dir);
    assert!(files.len() >= 30, "the broken-manifest corpus went missing");
    let mut failures = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
        let results = parse_manifests(&text, &file.display().to_string());
        let errors: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        if errors.is_empty() {
            failures.push(format!("{}: accepted, but should fail", file.display()));
            continue;
        }
        let all = errors.join("\n");
        for want in expected {
            if !all.contains(want) {
                failures.push(format!("{}: expected {want:?} in:\n{all}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn an_invalid_object_names_its_kind_and_name() {
    let text = fs::read_to_string(
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/invalid/database-both.yaml"),
    )
    .unwrap();
    let err = parse_manifests(&text, "database-both.yaml")
        .remove(0)
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("Workspace \"broken\" is invalid:"),
        "{message}"
    );
    assert_eq!(err.field_errors()[0].path, "spec.database");
}

#[test]
fn explicit_null_means_absent() {
    // GitOps tools may send `external: null`; the API server prunes it, so the
    // exactly-one rule still sees only `managed`.
    let object = json!({
        "apiVersion": "entente.dev/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": "w"},
        "spec": {
            "organisation": "Org",
            "siteUrl": "https://chat.example.org",
            "database": {"managed": {}, "external": null},
            "objectStorage": {"endpoint": "https://s3.example.org", "bucket": "files", "credentials": {"secretName": "s3"}}
        }
    });
    validate_object(&object, None, "inline").unwrap();
}

#[test]
fn a_legal_hold_cannot_move_to_another_workspace() {
    let hold = |workspace: &str| {
        json!({
            "apiVersion": "entente.dev/v1alpha1",
            "kind": "LegalHold",
            "metadata": {"name": "h"},
            "spec": {"workspaceRef": workspace, "reason": "inquiry", "users": ["j.doe"]}
        })
    };
    validate_object(&hold("a"), Some(&hold("a")), "update").unwrap();
    let err = validate_object(&hold("b"), Some(&hold("a")), "update").unwrap_err();
    assert!(
        err.to_string().contains("workspaceRef cannot change"),
        "{err}"
    );
}

#[test]
fn non_entente_documents_are_named_not_ignored() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n";
    let err = parse_manifests(text, "mixed.yaml").remove(0).unwrap_err();
    assert!(matches!(err, ManifestError::UnknownKind { .. }));
    assert!(
        err.to_string()
            .contains("Secret in v1 is not an Entente kind"),
        "{err}"
    );
}

#[test]
fn yaml_syntax_errors_name_the_document() {
    let text = "apiVersion: entente.dev/v1alpha1\n---\nkind: [unclosed\n";
    let results = parse_manifests(text, "bad.yaml");
    let err = results.last().unwrap().as_ref().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bad.yaml (document 2): not valid YAML"),
        "{err}"
    );
}
