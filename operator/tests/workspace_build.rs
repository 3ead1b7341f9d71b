//! What a Workspace becomes: built from the examples a user would apply.

use std::{collections::BTreeSet, path::Path};

use entente_crds::{
    config::{RuntimeConfig, SecretSource},
    validate::{parse_manifests, Resource},
    Workspace,
};
use entente_operator::workspace::{build, layout};

fn example_workspaces() -> Vec<Workspace> {
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../examples");
    let mut workspaces = Vec::new();
    for example in ["mission-partner", "sovereign-m365", "edge-ddil"] {
        for entry in std::fs::read_dir(root.join(example)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for resource in parse_manifests(&text, &path.display().to_string()) {
                if let Resource::Workspace(mut ws) = resource.unwrap() {
                    ws.metadata.namespace = Some("mission".into());
                    workspaces.push(*ws);
                }
            }
        }
    }
    assert_eq!(workspaces.len(), 4);
    workspaces
}

/// The example workspace called `name`.
fn example(name: &str) -> Workspace {
    example_workspaces()
        .into_iter()
        .find(|w| w.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no example workspace {name}"))
}

/// Every path inside the pod that the deployment provides.
fn mounted_files(workspace: &Workspace) -> BTreeSet<String> {
    let deployment = build::deployment::build(workspace);
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let mut files = BTreeSet::new();
    for volume in pod.volumes.unwrap() {
        let mount_path = container
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == volume.name)
            .unwrap()
            .mount_path
            .clone();
        if volume.secret.is_some() {
            files.insert(format!("{mount_path}/{}", layout::CONFIG_FILE));
        }
        for source in volume.projected.and_then(|p| p.sources).unwrap_or_default() {
            for item in source.secret.and_then(|s| s.items).unwrap_or_default() {
                files.insert(format!("{mount_path}/{}", item.path));
            }
        }
    }
    files
}

fn referenced_files(config: &RuntimeConfig) -> Vec<String> {
    let mut files = Vec::new();
    let mut secret = |source: &SecretSource| match source {
        SecretSource::File(path) => files.push(path.display().to_string()),
        SecretSource::Env(name) => panic!("the operator mounts files; env {name} would not exist"),
    };
    secret(&config.database.url);
    secret(&config.object_storage.access_key_id);
    secret(&config.object_storage.secret_access_key);
    if let Some(password) = &config.identity.local.admin_password {
        secret(password);
    }
    if let Some(oidc) = &config.identity.oidc {
        secret(&oidc.client_secret);
    }
    let tls = &config.federation.tls;
    for path in [&tls.cert_file, &tls.key_file, &tls.ca_file]
        .into_iter()
        .chain(config.database.ca_file.iter())
        .chain(config.object_storage.ca_file.iter())
    {
        files.push(path.display().to_string());
    }
    files
}

#[test]
fn every_file_the_config_names_is_mounted_in_the_pod() {
    for workspace in example_workspaces() {
        let config = entente_crds::render::runtime_config::build(
            &workspace,
            &entente_crds::render::Placement::pod(),
        )
        .unwrap();
        let mounted = mounted_files(&workspace);
        for file in referenced_files(&config) {
            assert!(
                mounted.contains(&file),
                "{}: {file} is named but not mounted; mounted: {mounted:?}",
                workspace.metadata.name.as_deref().unwrap()
            );
        }
        let args = build::deployment::build(&workspace)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .args
            .clone()
            .unwrap();
        assert!(
            mounted.contains(&args[2]),
            "the server is started with a config it has"
        );
        // What the operator writes, the server reads back unchanged.
        assert_eq!(
            RuntimeConfig::parse(&config.to_yaml(), "rendered").unwrap(),
            config
        );
    }
}

#[test]
fn the_config_carries_the_spec() {
    let agency = &example("agency");
    let config = entente_crds::render::runtime_config::build(
        agency,
        &entente_crds::render::Placement::pod(),
    )
    .unwrap();
    assert_eq!(config.workspace.id, "agency");
    let oidc = config.identity.oidc.as_ref().expect("Entra ID");
    assert!(!config.identity.local.enabled);
    assert_eq!(
        oidc.issuer_url,
        "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
        "derived from the tenant"
    );
    assert_eq!(oidc.admin_groups, ["22222222-2222-2222-2222-222222222222"]);
    assert_eq!(config.retention.message_days, Some(365));
    assert!(config.object_storage.object_lock);
    let teams = config
        .web
        .teams
        .as_ref()
        .expect("embedded in Microsoft 365");
    assert_eq!(teams.app_id, "5d0e8c3a-7b1f-4c2e-9a6d-3f4b5c6d7e8f");
    assert!(config
        .web
        .frame_ancestors
        .contains(&"https://teams.microsoft.com".to_string()));
    assert!(config
        .web
        .frame_ancestors
        .contains(&"https://outlook.office.com".to_string()));
    assert!(
        config.database.ca_file.is_some(),
        "the external database's CA is passed on"
    );
    let nation_a = &example("nation-a");
    let config = entente_crds::render::runtime_config::build(
        nation_a,
        &entente_crds::render::Placement::pod(),
    )
    .unwrap();
    assert_eq!(config.identity.ranked_attributes["clearance"][3], "SECRET");
    assert!(
        config.web.frame_ancestors.is_empty() && config.web.teams.is_none(),
        "not embedded: nothing may frame the client"
    );
    assert_eq!(config.limits.max_upload_bytes, 100 << 20);
    assert_eq!(config.listen.http.port(), layout::HTTP_PORT);
}

#[test]
fn a_managed_database_is_read_from_cloudnativepg_s_app_secret() {
    let nation_a = &example("nation-a");
    let mounts = build::secrets::mounts(nation_a);
    let database = mounts.iter().find(|m| m.dir == "database").unwrap();
    assert_eq!(
        (database.secret.as_str(), database.key.as_str()),
        ("nation-a-db-app", "uri")
    );
    let agency = &example("agency");
    let database = build::secrets::mounts(agency)
        .into_iter()
        .find(|m| m.dir == "database" && m.file == "uri")
        .unwrap();
    assert_eq!(
        (database.secret.as_str(), database.key.as_str()),
        ("agency-db", "uri")
    );
}

#[test]
fn the_deployment_is_highly_available_and_locked_down() {
    let nation_a = example("nation-a");
    let deployment = build::deployment::build(&nation_a);
    assert_eq!(deployment.metadata.namespace.as_deref(), Some("mission"));
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let rolling = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(
        rolling.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0))
    );
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert!(pod.security_context.unwrap().run_as_non_root.unwrap());
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(path(&container.readiness_probe), "/readyz");
    assert_eq!(path(&container.liveness_probe), "/healthz");
    // Spread across zones and nodes unless told otherwise.
    let keys: Vec<String> = pod
        .topology_spread_constraints
        .unwrap()
        .into_iter()
        .map(|t| t.topology_key)
        .collect();
    assert_eq!(
        keys,
        ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    );
    assert!(pod.affinity.unwrap().pod_anti_affinity.is_some());
    // A writable /tmp for upload spooling, on a read-only root.
    assert!(container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .any(|m| m.mount_path == "/tmp" && m.read_only.is_none()));
}

#[test]
fn user_labels_cannot_break_the_selector() {
    let mut workspace = example_workspaces().remove(0);
    workspace
        .spec
        .pod
        .labels
        .insert("app.kubernetes.io/instance".into(), "hijack".into());
    workspace
        .spec
        .pod
        .labels
        .insert("team".into(), "ops".into());
    let spec = build::deployment::build(&workspace).spec.unwrap();
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    for (key, value) in spec.selector.match_labels.unwrap() {
        assert_eq!(pod_labels.get(&key), Some(&value), "{key}");
    }
    assert_eq!(pod_labels["team"], "ops");
}

#[test]
fn services_select_the_server_pods_and_a_single_replica_has_no_budget() {
    for workspace in example_workspaces() {
        let deployment = build::deployment::build(&workspace);
        let pod_labels = deployment
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap();
        let services = build::service::build(&workspace);
        let ports: Vec<i32> = services
            .iter()
            .map(|s| s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port)
            .collect();
        assert_eq!(ports, [8080, 8443, 9090]);
        for service in &services {
            for (key, value) in service.spec.as_ref().unwrap().selector.as_ref().unwrap() {
                assert_eq!(pod_labels.get(key), Some(value));
            }
        }
        let budget = build::pdb::build(&workspace);
        assert_eq!(
            budget.is_some(),
            workspace.spec.replicas > 1,
            "{:?}",
            workspace.metadata.name
        );
    }
}

#[test]
fn an_unusable_limit_names_the_field() {
    let mut workspace = example_workspaces().remove(0);
    workspace.spec.limits.max_upload_size = "99999999999999Ti".into();
    let error = entente_crds::render::runtime_config::build(
        &workspace,
        &entente_crds::render::Placement::pod(),
    )
    .unwrap_err();
    assert_eq!(error.field, "spec.limits.maxUploadSize");
    assert!(error.to_string().contains("too large"), "{error}");
}

mod network {
    use super::*;
    use entente_operator::workspace::build::network_policy::{build, Operator};
    use k8s_openapi::api::networking::v1::NetworkPolicy;

    fn policies(name: &str) -> Vec<NetworkPolicy> {
        let workspace = example(name);
        build(
            &workspace,
            &Operator {
                namespace: "entente-system".into(),
            },
            None,
        )
    }

    fn rule_for_port(
        policy: &NetworkPolicy,
        port: i32,
    ) -> k8s_openapi::api::networking::v1::NetworkPolicyIngressRule {
        policy
            .spec
            .as_ref()
            .unwrap()
            .ingress
            .as_ref()
            .unwrap()
            .iter()
            .find(|r| {
                r.ports.as_ref().unwrap().iter().any(|p| {
                    p.port
                        == Some(
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(port),
                        )
                })
            })
            .cloned()
            .unwrap_or_else(|| panic!("no ingress rule for port {port}"))
    }

    #[test]
    fn everything_is_closed_then_opened_precisely() {
        let policies = policies("nation-a");
        assert_eq!(policies.len(), 2);
        let deny = policies[0].spec.as_ref().unwrap();
        assert!(
            deny.ingress.is_none() && deny.egress.is_none(),
            "default deny"
        );
        let allow = &policies[1];
        // Clients only from the ingress controller's namespace.
        let clients = rule_for_port(allow, 8080);
        let from = &clients.from.unwrap()[0];
        assert_eq!(
            from.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "ingress-nginx"
        );
        // Federation only from the partner network.
        let federation = rule_for_port(allow, 8443);
        assert_eq!(
            federation.from.unwrap()[0].ip_block.as_ref().unwrap().cidr,
            "198.51.100.0/24"
        );
        // Admin only from the operator.
        let admin = rule_for_port(allow, 9090);
        let peer = &admin.from.unwrap()[0];
        assert_eq!(
            peer.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "entente-system"
        );
        assert_eq!(
            peer.pod_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["app.kubernetes.io/component"],
            "operator"
        );
        // Metrics, on their own port, only from the operator's namespace
        // unless the spec names the monitoring peers; the API port has none.
        let metrics = rule_for_port(allow, 9100);
        let peer = &metrics.from.unwrap()[0];
        assert_eq!(
            peer.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "entente-system"
        );
        assert!(peer.pod_selector.is_none(), "any pod of that namespace");
        // Egress: DNS, its CloudNativePG cluster, the partner network.
        let egress = allow.spec.as_ref().unwrap().egress.clone().unwrap();
        assert_eq!(egress.len(), 3);
        assert_eq!(
            egress[1].to.as_ref().unwrap()[0]
                .pod_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["cnpg.io/cluster"],
            "nation-a-db"
        );
    }

    #[test]
    fn without_partner_networks_federation_stays_closed() {
        let allow = &policies("fob-north")[1];
        let ports: Vec<_> = allow
            .spec
            .as_ref()
            .unwrap()
            .ingress
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|r| r.ports.clone().unwrap())
            .filter_map(|p| p.port)
            .collect();
        assert!(
            !ports.contains(&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8443)),
            "{ports:?}"
        );
    }

    #[test]
    fn an_external_database_is_reached_through_declared_networks_only() {
        let allow = &policies("agency")[1];
        let egress = allow.spec.as_ref().unwrap().egress.clone().unwrap();
        assert!(
            egress.iter().all(|rule| rule
                .to
                .as_ref()
                .unwrap()
                .iter()
                .all(|peer| peer.pod_selector.is_none())),
            "no in-cluster database rule"
        );
        let cidrs: Vec<String> = egress
            .iter()
            .flat_map(|r| r.to.clone().unwrap())
            .filter_map(|p| p.ip_block.map(|b| b.cidr))
            .collect();
        assert_eq!(cidrs, ["10.40.0.0/16"]);
    }

    #[test]
    fn policies_can_be_left_to_another_layer() {
        let mut workspace = example_workspaces().remove(0);
        workspace.spec.network.policies = false;
        assert!(build(
            &workspace,
            &Operator {
                namespace: "x".into()
            },
            None
        )
        .is_empty());
    }
}

#[test]
fn the_migration_job_runs_the_same_pod_once_per_image() {
    let mut workspace = example("nation-a");
    let job = build::migration::build(&workspace);
    let pod = job.spec.clone().unwrap().template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let container = &pod.containers[0];
    assert_eq!(container.args.as_ref().unwrap()[0], "migrate");
    assert!(
        container.readiness_probe.is_none(),
        "a one-shot job has no probes"
    );
    // The same secrets and image as the servers.
    let server = build::deployment::build(&workspace)
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    assert_eq!(pod.volumes, server.volumes);
    assert_eq!(container.image, server.containers[0].image);
    let first = job.metadata.name.unwrap();
    assert_eq!(
        build::migration::name(&workspace),
        first,
        "stable for one image"
    );
    workspace.spec.pod.image = Some("registry.example/entente/entente-server:9.9.9".into());
    assert_ne!(
        build::migration::name(&workspace),
        first,
        "a new image gets a new job"
    );
    assert!(first.len() <= 63);
}

#[test]
fn the_ingress_routes_the_host_to_the_client_service() {
    let nation_a = &example("nation-a");
    let ingress = build::ingress::build(nation_a).unwrap().spec.unwrap();
    assert_eq!(ingress.ingress_class_name.as_deref(), Some("nginx"));
    assert_eq!(
        ingress.tls.unwrap()[0].secret_name.as_deref(),
        Some("chat-nation-a-tls")
    );
    let rule = &ingress.rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("chat.nation-a.example"));
    let backend = rule.http.as_ref().unwrap().paths[0]
        .backend
        .service
        .clone()
        .unwrap();
    assert_eq!(backend.name, "nation-a");
    let nation_b = &example("nation-b");
    assert!(build::ingress::build(nation_b).is_none());
}
