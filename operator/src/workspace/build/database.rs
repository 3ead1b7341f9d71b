//! The managed database: a CloudNativePG `Cluster`, and when backups are
//! configured the Barman Cloud plugin's `ObjectStore` and a `ScheduledBackup`.
//!
//! Emitted as JSON (the operator applies them as dynamic objects); the tests
//! validate them against the CRD schemas CloudNativePG publishes.

use entente_crds::{workspace::ManagedDatabase, Workspace};
use serde_json::{json, Value};

use crate::workspace::layout::{self, Names};

pub const DATABASE: &str = "entente";
pub const OWNER: &str = "entente";
const BARMAN_PLUGIN: &str = "barman-cloud.cloudnative-pg.io";

/// The objects of a managed database; empty for an external one.
pub fn build(workspace: &Workspace) -> Vec<Value> {
    match &workspace.spec.database.managed {
        Some(managed) => {
            let mut objects = vec![cluster(workspace, managed)];
            if managed.backup.is_some() {
                objects.extend([
                    object_store(workspace, managed),
                    scheduled_backup(workspace, managed),
                ]);
            }
            objects
        }
        None => Vec::new(),
    }
}

fn metadata(workspace: &Workspace, name: String) -> Value {
    serde_json::to_value(layout::metadata(workspace, name, "database"))
        .expect("metadata serializes")
}

fn cluster(workspace: &Workspace, managed: &ManagedDatabase) -> Value {
    let names = Names::of(workspace);
    let mut spec = json!({
        "instances": managed.instances,
        "imageName": managed.image_name.clone().unwrap_or_else(|| format!("ghcr.io/cloudnative-pg/postgresql:{}", managed.postgres_version)),
        "bootstrap": {"initdb": {"database": DATABASE, "owner": OWNER}},
        "storage": {"size": managed.storage.size},
        // CloudNativePG's own disruption budget guards the primary during drains.
        "enablePDB": true,
    });
    if let Some(class) = &managed.storage.storage_class {
        spec["storage"]["storageClass"] = json!(class);
    }
    if let Some(sync) = &managed.synchronous_replication {
        spec["postgresql"] = json!({"synchronous": {"method": "any", "number": sync.number}});
    }
    if let Some(resources) = &managed.resources {
        spec["resources"] = serde_json::to_value(resources).expect("resources serialize");
    }
    if managed.backup.is_some() {
        spec["plugins"] = json!([{
            "name": BARMAN_PLUGIN,
            "isWALArchiver": true,
            "parameters": {"barmanObjectName": format!("{}-backup", names.database_cluster())},
        }]);
    }
    json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": metadata(workspace, names.database_cluster()),
        "spec": spec,
    })
}

fn object_store(workspace: &Workspace, managed: &ManagedDatabase) -> Value {
    let names = Names::of(workspace);
    let backup = managed.backup.as_ref().expect("called with a backup");
    let credentials = &backup.credentials;
    let mut configuration = json!({
        "destinationPath": backup.destination_path,
        "s3Credentials": {
            "accessKeyId": {"name": credentials.secret_name, "key": credentials.access_key_id_key},
            "secretAccessKey": {"name": credentials.secret_name, "key": credentials.secret_access_key_key},
        },
    });
    if let Some(endpoint) = &backup.endpoint_url {
        configuration["endpointURL"] = json!(endpoint);
    }
    json!({
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": metadata(workspace, format!("{}-backup", names.database_cluster())),
        "spec": {"configuration": configuration, "retentionPolicy": backup.retention},
    })
}

fn scheduled_backup(workspace: &Workspace, managed: &ManagedDatabase) -> Value {
    let names = Names::of(workspace);
    let backup = managed.backup.as_ref().expect("called with a backup");
    json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "ScheduledBackup",
        "metadata": metadata(workspace, names.database_cluster()),
        "spec": {
            "schedule": backup.schedule,
            "cluster": {"name": names.database_cluster()},
            "method": "plugin",
            "pluginConfiguration": {"name": BARMAN_PLUGIN},
            "backupOwnerReference": "self",
        },
    })
}
