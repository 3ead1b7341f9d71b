//! The Workspace reconcile, one visible pipeline:
//! dereference → validate → build (pure) → apply → prune → status.
//!
//! Side effects besides the API: the bucket (created before the servers that
//! need it) and, on deletion, the bucket's deletion policy (a finalizer).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use entente_crds::{
    common::DeletionPolicy,
    render::{self, certs, Attached, Placement, Rendered},
    workspace::BucketStatus,
    Workspace,
};
use entente_s3::{BucketOptions, Deleted};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        batch::v1::Job,
        core::v1::Secret,
        core::v1::Service,
        networking::v1::{Ingress, NetworkPolicy},
        policy::v1::PodDisruptionBudget,
    },
    ByteString,
};
use kube::{api::ApiResource, runtime::controller::Action, Api, Resource, ResourceExt};

use super::{
    build::{self, network_policy::Operator},
    dereference::{self, barman_object_store, cnpg_cluster, cnpg_scheduled_backup, Refs},
    layout::{self, digest, metadata, Names},
    observe::{self, Database},
    rollout::{self, JobState},
};
use crate::reconcile::{
    children::{self, Children},
    finalizer::finalized,
    status::{self, Report},
    Context, Error, Health,
};

/// Removed once the bucket's deletion policy has been carried out.
pub const FINALIZER: &str = "entente.dev/object-storage";
/// Pod-template annotation that changes exactly when running servers must
/// restart: a config section they cannot reload, or a new certificate.
pub const RESTART_ANNOTATION: &str = "entente.dev/restart-digest";

/// How often a healthy workspace is looked at again without any change
/// (referenced Secrets are not watched).
const RESYNC: Duration = Duration::from_secs(300);

/// The Secrets a Workspace reads without owning them (watched, so a fix or a
/// rotation is acted on at once).
pub fn secrets_read(workspace: &Workspace) -> Vec<String> {
    dereference::secrets_read(workspace)
}

/// Every kind a Workspace has children of: watched, and pruned.
pub fn child_kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<PodDisruptionBudget>(&()),
        ApiResource::erase::<Ingress>(&()),
        ApiResource::erase::<NetworkPolicy>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<Job>(&()),
        cnpg_cluster(),
        cnpg_scheduled_backup(),
        barman_object_store(),
    ]
}

pub async fn reconcile(workspace: Arc<Workspace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<Workspace> = Api::namespaced(
        ctx.client.clone(),
        &workspace.namespace().unwrap_or_default(),
    );
    finalized(
        &api,
        FINALIZER,
        (*workspace).clone(),
        |workspace| {
            let (api, ctx) = (&api, &ctx);
            async move { apply(api, &workspace, ctx).await }
        },
        |workspace| {
            let ctx = &ctx;
            async move { cleanup(&workspace, ctx).await }
        },
    )
    .await
}

async fn apply(
    api: &Api<Workspace>,
    workspace: &Workspace,
    ctx: &Context,
) -> Result<Action, Error> {
    // 1. Dereference.
    // Boxed: its future is large, and reconciles run on small stacks.
    let refs = Box::pin(dereference::dereference(&ctx.client, workspace)).await?;

    // 2. Validate: anything missing is for a person to fix.
    if !refs.problems.is_empty() {
        let health = Health::stalled("ReferenceNotFound", refs.problems.join("; "));
        report_problem(api, workspace, ctx, health).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    let apertium_url = build::apertium::url(workspace);
    let attached = Attached {
        guest_policies: &refs.guest_policies,
        access_policies: &refs.access_policies,
        partners: &refs.partner_connections,
        secret: &|name| refs.secrets.get(name),
        calls: refs
            .calls_cluster
            .as_ref()
            .map(|cc| (cc, refs.calls_nodes.as_slice())),
        calls_key: workspace.spec.features.calls.as_ref().and_then(|calls| {
            refs.secret_value(&crate::calls::token_secret(&calls.calls_cluster_ref), "key")
        }),
        language_model: refs.language_model.as_ref().map(|lm| {
            let key = entente_crds::render::ai::api_key_secret(lm, &lm.name_any())
                .and_then(|key| refs.secret_value(&key.name, &key.key));
            (lm, key)
        }),
        apertium_url: apertium_url.as_deref(),
        translation_key: dereference::translation_key(workspace)
            .and_then(|key| refs.secret_value(&key.name, &key.key)),
    };
    let Rendered {
        config,
        files: config_files,
    } = match render::render(workspace, &Placement::pod(), attached) {
        Ok(rendered) => rendered,
        Err(error) => {
            let health = Health::stalled("InvalidSpec", error.to_string());
            report_problem(api, workspace, ctx, health).await?;
            return Ok(Action::await_change());
        }
    };

    // 3. The side effects children depend on: certificates, the bucket.
    let issued = federation_certificates(workspace, &refs)?;
    let bucket = match provision_bucket(workspace, &refs, ctx).await {
        Ok(bucket) => bucket,
        // Unreachable or failing: the operator retries by itself.
        Err(error @ entente_s3::Error::Request(_)) => {
            let health = Health::failing("ObjectStoreUnavailable", error.to_string());
            report_problem(api, workspace, ctx, health).await?;
            return Err(Error::ObjectStore(error));
        }
        // Refused credentials or a capability the store lacks: a person must act.
        Err(error) => {
            let reason = match error {
                entente_s3::Error::Denied(_) => "ObjectStoreDenied",
                _ => "ObjectStoreRefused",
            };
            report_problem(
                api,
                workspace,
                ctx,
                Health::stalled(reason, error.to_string()),
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
    };

    // 4. Build every child (pure).
    let image = build::migration::image(workspace);
    let job_state = JobState::of(refs.migration.as_ref());
    let plan = rollout::plan(
        &image,
        refs.deployment.as_ref().and_then(rollout::deployed_image),
        &job_state,
    );
    let children = build_children(
        workspace,
        &refs,
        (&config, &config_files),
        &issued,
        &plan,
        &ctx.operator_namespace,
    );
    let managed = workspace.spec.database.managed.as_ref();

    // 5. Apply.
    let mut cloudnative_pg_missing = false;
    if let Err(error) = children.apply(&ctx.client).await {
        match &error {
            Error::Apply { kind, source, .. }
                if children::is_not_found(source)
                    && ["Cluster", "ScheduledBackup", "ObjectStore"].contains(&kind.as_str()) =>
            {
                cloudnative_pg_missing = true;
            }
            _ => {
                report_problem(
                    api,
                    workspace,
                    ctx,
                    Health::failing(error.reason(), error.to_string()),
                )
                .await?;
                return Err(error);
            }
        }
    }

    // 6. Prune what is no longer wanted.
    let pruned = children.prune(ctx, &child_kinds()).await?;
    if !pruned.is_empty() {
        tracing::info!(workspace = %workspace.name_any(), ?pruned, "pruned children");
    }

    // 7. Status.
    let database = if managed.is_none() {
        Database::External
    } else if cloudnative_pg_missing {
        Database::CloudNativePgMissing
    } else {
        Database::Managed(refs.cluster.clone())
    };
    let verdict = observe::verdict(observe::Observed {
        workspace,
        deployment: refs.deployment.as_ref(),
        database,
        bucket: Some(BucketStatus {
            name: Some(workspace.spec.object_storage.bucket.clone()),
            ready: true,
            object_lock: bucket.object_lock,
        }),
        certificate_not_after: Some(issued.server_not_after),
        held: plan.held.clone(),
    });
    let object_ref = workspace.object_ref(&());
    if plan.run_job && job_state == JobState::Missing {
        ctx.event(
            &object_ref,
            false,
            "MigrationStarted",
            format!("migrating the database for {image} before rolling out"),
        )
        .await;
    }
    if bucket.created {
        ctx.event(
            &object_ref,
            false,
            "BucketCreated",
            format!("created bucket {:?}", workspace.spec.object_storage.bucket),
        )
        .await;
    }
    if issued.new_server {
        ctx.event(
            &object_ref,
            false,
            "CertificateIssued",
            format!(
                "issued the federation certificate{}",
                if issued.new_ca { " and a new CA" } else { "" }
            ),
        )
        .await;
    }
    // The identity provider, as the servers will reach it.
    let identity = match &config.identity.oidc {
        Some(oidc) => Some(crate::identity::probe(&oidc.issuer_url).await),
        None => None,
    };
    report(
        api,
        workspace,
        ctx,
        verdict.status,
        verdict.health,
        verdict.database_ready,
        identity,
    )
    .await?;

    // Come back in time to renew the certificate, or at the resync period.
    let renew_before =
        certs::duration_seconds(&workspace.spec.federation.renew_before).unwrap_or(0);
    let until_renewal = issued.server_not_after - renew_before - now();
    Ok(Action::requeue(
        RESYNC.min(Duration::from_secs(until_renewal.max(1) as u64)),
    ))
}

/// Every child of `workspace` (pure but for a generated password): what
/// this reconcile wants to exist, and what it keeps as it is.
fn build_children(
    workspace: &Workspace,
    refs: &Refs,
    (config, config_files): (&entente_crds::config::RuntimeConfig, &[(String, Vec<u8>)]),
    issued: &certs::Issued,
    plan: &rollout::Plan,
    operator_namespace: &str,
) -> Children {
    let names = Names::of(workspace);
    let mut children = Children::new(workspace);
    children.add(&secret(
        workspace,
        names.runtime_secret(),
        "config",
        std::iter::once((
            layout::CONFIG_FILE.to_string(),
            config.to_yaml().into_bytes(),
        ))
        .chain(config_files.iter().cloned()),
        None,
    ));
    children.add(&secret(
        workspace,
        names.federation_ca_secret(),
        "federation",
        [
            ("ca.crt", issued.ca.cert.clone().into_bytes()),
            ("ca.key", issued.ca.key.clone().into_bytes()),
        ],
        None,
    ));
    children.add(&secret(
        workspace,
        names.federation_tls_secret(),
        "federation",
        [
            ("tls.crt", issued.server.cert.clone().into_bytes()),
            ("tls.key", issued.server.key.clone().into_bytes()),
            ("ca.crt", issued.ca.cert.clone().into_bytes()),
        ],
        Some("kubernetes.io/tls"),
    ));
    let secret_kind = ApiResource::erase::<Secret>(&());
    if workspace.spec.identity.local.enabled
        && workspace
            .spec
            .identity
            .local
            .admin
            .password_secret
            .is_none()
    {
        // Generated once; a person may rotate it by editing the Secret.
        if refs.secrets.contains_key(&names.admin_secret()) {
            children.keep(&secret_kind, names.admin_secret());
        } else {
            children.add(&secret(
                workspace,
                names.admin_secret(),
                "admin",
                [("password", password().into_bytes())],
                None,
            ));
        }
    }
    if plan.roll {
        let mut deployment = build::deployment::build(workspace);
        let restart = serde_json::to_string(&config.restart_sections()).expect("config serializes");
        let template = deployment
            .spec
            .as_mut()
            .expect("the builder sets a spec")
            .template
            .metadata
            .get_or_insert_with(Default::default);
        template
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(
                RESTART_ANNOTATION.into(),
                digest(&format!("{restart}{}", issued.server_not_after)),
            );
        children.add(&deployment);
    } else {
        children.keep(&ApiResource::erase::<Deployment>(&()), names.server());
    }
    let job_name = build::migration::name(workspace);
    if plan.run_job {
        children.add(&build::migration::build(workspace));
    } else if plan.keep_job {
        children.keep(&ApiResource::erase::<Job>(&()), job_name.clone());
    }
    for service in build::service::build(workspace) {
        children.add(&service);
    }
    if let Some(pdb) = build::pdb::build(workspace) {
        children.add(&pdb);
    }
    if let Some(ingress) = build::ingress::build(workspace) {
        children.add(&ingress);
    }
    if let Some((deployment, service, policy)) = build::apertium::build(workspace) {
        children.add(&deployment);
        children.add(&service);
        children.add(&policy);
    }
    let operator = Operator {
        namespace: operator_namespace.to_string(),
    };
    for policy in build::network_policy::build(workspace, &operator, refs.language_model.as_ref()) {
        children.add(&policy);
    }
    // Database objects last: if CloudNativePG is missing, everything else is in place.
    let owned_database = workspace
        .spec
        .database
        .managed
        .as_ref()
        .is_some_and(|m| m.deletion_policy == DeletionPolicy::Delete);
    for object in build::database::build(workspace) {
        let resource = match object["kind"].as_str() {
            Some("Cluster") => cnpg_cluster(),
            Some("ScheduledBackup") => cnpg_scheduled_backup(),
            _ => barman_object_store(),
        };
        children.add_value(resource, object, owned_database);
    }
    children
}

/// Writes status and records an Event when readiness changes.
async fn report(
    api: &Api<Workspace>,
    workspace: &Workspace,
    ctx: &Context,
    status: entente_crds::WorkspaceStatus,
    health: Health,
    database_ready: Option<(bool, String, String)>,
    identity: Option<(bool, String, String)>,
) -> Result<(), Error> {
    let warning = matches!(health, Health::Degraded { .. });
    let (reason, message) = match &health {
        Health::Ready { message } => ("Ready".to_string(), message.clone()),
        Health::Progressing { reason, message }
        | Health::Degraded {
            reason, message, ..
        } => (reason.clone(), message.clone()),
        Health::NotImplemented { message } => ("NotImplemented".into(), message.clone()),
    };
    let extra = database_ready
        .map(|(ready, reason, message)| ("DatabaseReady", ready, reason, message))
        .into_iter()
        .chain(identity.map(|(reachable, reason, message)| {
            ("IdentityProviderReachable", reachable, reason, message)
        }))
        .collect();
    let ready_changed = status::write(
        api,
        workspace,
        Report {
            status,
            health,
            extra_conditions: extra,
        },
    )
    .await?;
    if ready_changed {
        ctx.event(&workspace.object_ref(&()), warning, &reason, message)
            .await;
    }
    Ok(())
}

/// Reports a reconcile that stopped early: the conditions say why, the
/// other status fields keep what was last observed.
async fn report_problem(
    api: &Api<Workspace>,
    workspace: &Workspace,
    ctx: &Context,
    health: Health,
) -> Result<(), Error> {
    let previous = workspace.status.clone().unwrap_or_default();
    report(api, workspace, ctx, previous, health, None, None).await
}

fn now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

fn federation_certificates(workspace: &Workspace, refs: &Refs) -> Result<certs::Issued, Error> {
    let names = Names::of(workspace);
    let pair = |secret: &str, cert: &str, key: &str| {
        let text = |k: &str| {
            refs.secret_value(secret, k)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        Some(certs::Pair {
            cert: text(cert)?,
            key: text(key)?,
        })
    };
    let namespace = workspace.namespace().unwrap_or_default();
    let dns = vec![
        render::federation_identity(workspace),
        format!("{}.{namespace}.svc", names.federation_service()),
        format!(
            "{}.{namespace}.svc.cluster.local",
            names.federation_service()
        ),
    ];
    let federation = &workspace.spec.federation;
    let seconds = |text: &str| certs::duration_seconds(text).map_err(Error::Certificate);
    certs::ensure(
        pair(&names.federation_ca_secret(), "ca.crt", "ca.key"),
        pair(&names.federation_tls_secret(), "tls.crt", "tls.key"),
        &certs::Wanted {
            names: &dns,
            organisation: &workspace.spec.organisation,
            lifetime_seconds: seconds(&federation.certificate_duration)?,
            renew_before_seconds: seconds(&federation.renew_before)?,
        },
        now(),
    )
    .map_err(Error::Certificate)
}

/// The S3 connection of a workspace, from its spec and credentials Secret.
fn connection(workspace: &Workspace, refs: &Refs) -> Result<entente_s3::Connection, String> {
    let storage = &workspace.spec.object_storage;
    let c = &storage.credentials;
    let value = |name: &str, key: &str| {
        refs.secret_value(name, key)
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .ok_or_else(|| format!("Secret {name:?} has no key {key:?}"))
    };
    Ok(entente_s3::Connection {
        endpoint: storage.endpoint.clone(),
        region: storage.region.clone(),
        force_path_style: storage.force_path_style,
        access_key_id: value(&c.secret_name, &c.access_key_id_key)?,
        secret_access_key: value(&c.secret_name, &c.secret_access_key_key)?,
        ca_pem: match &storage.ca_secret {
            Some(ca) => Some(value(&ca.name, &ca.key)?.into_bytes()),
            None => None,
        },
    })
}

/// Ensures the bucket, or trusts a recent check of the same bucket with the
/// same options and credentials.
async fn provision_bucket(
    workspace: &Workspace,
    refs: &Refs,
    ctx: &Context,
) -> Result<entente_s3::BucketState, entente_s3::Error> {
    let storage = &workspace.spec.object_storage;
    let connection = connection(workspace, refs).map_err(entente_s3::Error::Refused)?;
    // The key covers everything that decides the answer (the secret key
    // only as a digest), so a changed spec or credential is checked afresh.
    let key = format!(
        "bucket/{}/{}/{}/{}/{}/{}",
        storage.endpoint,
        storage.region,
        storage.bucket,
        storage.object_lock,
        connection.access_key_id,
        digest(&connection.secret_access_key)
    );
    if let Some(lock) = ctx.recently_verified(&key) {
        return Ok(entente_s3::BucketState {
            created: false,
            versioning: storage.object_lock,
            object_lock: lock == "locked",
        });
    }
    let state = entente_s3::ensure_bucket(
        &connection.client()?,
        &storage.region,
        &storage.bucket,
        BucketOptions {
            object_lock: storage.object_lock,
        },
    )
    .await?;
    ctx.verified(
        key,
        if state.object_lock { "locked" } else { "plain" }.into(),
    );
    Ok(state)
}

/// The Workspace is being deleted: carry out the bucket's deletion policy.
/// Children go with their owner (Kubernetes garbage collection); a database
/// under `Retain` has no owner and stays.
async fn cleanup(workspace: &Workspace, ctx: &Context) -> Result<Action, Error> {
    let storage = &workspace.spec.object_storage;
    let object_ref = workspace.object_ref(&());
    if storage.deletion_policy == DeletionPolicy::Retain {
        ctx.event(
            &object_ref,
            false,
            "BucketRetained",
            format!("bucket {:?} kept (deletionPolicy: Retain)", storage.bucket),
        )
        .await;
        return Ok(Action::await_change());
    }
    // Boxed: its future is large, and reconciles run on small stacks.
    let refs = Box::pin(dereference::dereference(&ctx.client, workspace)).await?;
    let outcome = match connection(workspace, &refs) {
        Ok(connection) => match connection.client() {
            Ok(client) => entente_s3::delete_bucket(&client, &storage.bucket).await,
            Err(e) => Err(e),
        },
        Err(message) => Err(entente_s3::Error::Refused(message)),
    };
    let (warning, reason, note) = match outcome {
        Ok(Deleted::Deleted) => (
            false,
            "BucketDeleted",
            format!("deleted bucket {:?}", storage.bucket),
        ),
        Ok(Deleted::Missing) => (
            false,
            "BucketDeleted",
            format!("bucket {:?} was already gone", storage.bucket),
        ),
        Ok(Deleted::KeptNotEmpty) => (
            true,
            "BucketKept",
            format!("bucket {:?} kept: it is not empty", storage.bucket),
        ),
        Ok(Deleted::KeptLocked) => (
            true,
            "BucketKept",
            format!("bucket {:?} kept: it has Object Lock", storage.bucket),
        ),
        // Unreachable store: retry rather than forget the bucket.
        Err(error @ entente_s3::Error::Request(_)) => return Err(Error::ObjectStore(error)),
        Err(error) => (
            true,
            "BucketKept",
            format!("bucket {:?} kept: {error}", storage.bucket),
        ),
    };
    ctx.event(&object_ref, warning, reason, note).await;
    Ok(Action::await_change())
}

/// A Secret child holding `data`.
fn secret<K: Into<String>>(
    workspace: &Workspace,
    name: String,
    component: &str,
    data: impl IntoIterator<Item = (K, Vec<u8>)>,
    type_: Option<&str>,
) -> Secret {
    Secret {
        metadata: metadata(workspace, name, component),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k.into(), ByteString(v)))
                .collect(),
        ),
        type_: type_.map(String::from),
        ..Default::default()
    }
}

/// 24 random alphanumerics (~142 bits) for a generated admin password,
/// without the characters people confuse (0/O, 1/l/I).
fn password() -> String {
    crate::random::random_text(
        b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789",
        24,
    )
}
