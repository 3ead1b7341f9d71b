//! What the operator emits for CloudNativePG validates against the CRD schemas
//! that project publishes (read from ../shared/schemas; third-party data, not
//! copied into this repository).

use std::path::PathBuf;

use entente_crds::{
    validate::{parse_manifests, schema_errors, Resource},
    Workspace,
};
use entente_operator::workspace::build;
use serde_json::Value;

/// Where the published schemas are: `$ENTENTE_SHARED_DIR/schemas/cloudnative-pg`,
/// else `shared/` beside the repository (as on the build machines and in CI).
fn schemas_dir() -> Option<PathBuf> {
    let repo =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("..");
    std::env::var_os("ENTENTE_SHARED_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([repo.join("../shared")])
        .map(|shared| shared.join("schemas/cloudnative-pg"))
        .find(|dir| dir.is_dir())
}

/// The v1 openAPIV3Schema of the CRD in `file`, or None (said plainly on
/// stderr) when the published schemas are not on this machine.
fn schema(file: &str) -> Option<Value> {
    let Some(dir) = schemas_dir() else {
        eprintln!(
            "NOT CHECKED: the published CloudNativePG CRD schemas are absent (looked in $ENTENTE_SHARED_DIR and ../shared/schemas/cloudnative-pg beside the repository)"
        );
        return None;
    };
    let text = std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()));
    let crd: Value = serde_yaml::from_str(&text).unwrap();
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .unwrap();
    Some(version["schema"]["openAPIV3Schema"].clone())
}

fn workspace(yaml: &str) -> Workspace {
    match parse_manifests(yaml, "test").remove(0).unwrap() {
        Resource::Workspace(ws) => *ws,
        other => panic!("not a workspace: {}", other.kind()),
    }
}

const MANAGED: &str = r#"
apiVersion: entente.dev/v1alpha1
kind: Workspace
metadata: {name: nation-a, namespace: mission}
spec:
  organisation: Nation A
  siteUrl: https://chat.nation-a.example
  database:
    managed:
      instances: 3
      postgresVersion: 16
      synchronousReplication: {number: 1}
      storage: {size: 50Gi, storageClass: fast}
      resources: {requests: {cpu: "1", memory: 2Gi}}
      backup:
        destinationPath: s3://backups/nation-a/
        endpointUrl: https://s3.nation-a.example
        credentials: {secretName: backup-s3}
  objectStorage: {endpoint: "https://s3.nation-a.example", bucket: nation-a-files, credentials: {secretName: s3}}
"#;

fn check(object: &Value, schema_file: &str) {
    let Some(schema) = schema(schema_file) else {
        return;
    };
    let errors = schema_errors(&schema, object);
    assert!(
        errors.is_empty(),
        "{} does not fit {schema_file}: {errors:?}\n{object:#}",
        object["kind"]
    );
    if let Err(errors) = kube_cel::Validator::new().validate(&schema, object, None) {
        panic!(
            "{} breaks {schema_file}'s rules: {:?}",
            object["kind"],
            errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_managed_database_with_backups_fits_the_published_schemas() {
    let objects = build::database::build(&workspace(MANAGED));
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Cluster", "ObjectStore", "ScheduledBackup"]);
    check(&objects[0], "postgresql.cnpg.io_clusters.yaml");
    check(&objects[1], "barmancloud.cnpg.io_objectstores.yaml");
    check(&objects[2], "postgresql.cnpg.io_scheduledbackups.yaml");

    let cluster = &objects[0];
    assert_eq!(cluster["metadata"]["name"], "nation-a-db");
    assert_eq!(cluster["spec"]["instances"], 3);
    assert_eq!(
        cluster["spec"]["imageName"],
        "ghcr.io/cloudnative-pg/postgresql:16"
    );
    assert_eq!(cluster["spec"]["postgresql"]["synchronous"]["number"], 1);
    assert_eq!(
        cluster["spec"]["plugins"][0]["parameters"]["barmanObjectName"],
        "nation-a-db-backup"
    );
    // The server reads CloudNativePG's -app Secret for the database it bootstrapped.
    let mounts = build::secrets::mounts(&workspace(MANAGED));
    assert!(mounts
        .iter()
        .any(|m| m.secret == "nation-a-db-app" && m.key == "uri"));
}

#[test]
fn the_example_workspaces_database_objects_fit_too() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../examples");
    let mut clusters = 0;
    for example in ["mission-partner", "edge-ddil", "sovereign-m365"] {
        for entry in std::fs::read_dir(root.join(example)).unwrap() {
            let path = entry.unwrap().path();
            for resource in parse_manifests(&std::fs::read_to_string(&path).unwrap(), "example") {
                if let Resource::Workspace(ws) = resource.unwrap() {
                    for object in build::database::build(&ws) {
                        check(&object, "postgresql.cnpg.io_clusters.yaml");
                        clusters += 1;
                    }
                }
            }
        }
    }
    assert_eq!(
        clusters, 3,
        "nation-a, nation-b and fob-north run managed databases; the agency's is external"
    );
}

#[test]
fn the_schema_check_catches_a_wrong_cluster() {
    let mut cluster = build::database::build(&workspace(MANAGED)).remove(0);
    cluster["spec"]["instances"] = serde_json::json!("three");
    cluster["spec"]["storage"]["sizee"] = serde_json::json!("1Gi");
    let Some(schema) = schema("postgresql.cnpg.io_clusters.yaml") else {
        return;
    };
    let errors = schema_errors(&schema, &cluster);
    let text = format!("{errors:?}");
    assert!(
        text.contains("spec.instances") && text.contains("sizee"),
        "{text}"
    );
}
