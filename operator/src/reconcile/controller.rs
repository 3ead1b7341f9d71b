//! Running one kind's controller: watches (one per watched namespace, or one
//! cluster-wide), a guard so one undecodable object cannot stop it, metrics
//! around every reconcile, and requeue after errors.

use std::{future::Future, sync::Arc, time::Duration};

use entente_crds::Kind;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    api::{ApiResource, DynamicObject},
    core::{DeserializeGuard, PartialObjectMeta},
    runtime::{controller::Action, reflector::ObjectRef, watcher, Controller},
    Api, Client, ResourceExt,
};

use super::{Context, Error};
use crate::labels;

/// Where the operator looks: everywhere, or the listed namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    Namespaces(Vec<String>),
}

impl Scope {
    fn apis<T>(
        &self,
        client: &Client,
        make: impl Fn(Client, &str) -> Api<T>,
        all: impl Fn(Client) -> Api<T>,
    ) -> Vec<Api<T>> {
        match self {
            Scope::Cluster => vec![all(client.clone())],
            Scope::Namespaces(namespaces) => namespaces
                .iter()
                .map(|ns| make(client.clone(), ns))
                .collect(),
        }
    }
}

/// After a failed reconcile, try again after this long. Failures here are
/// the API or the object store being unavailable; problems a person must fix
/// are reported in status instead and never come through this path.
const RETRY_AFTER: Duration = Duration::from_secs(15);

/// Runs the controller of `K` until `shutdown` resolves. `owns` lists the
/// child kinds whose changes should wake the owner up; `reads_secrets`, the
/// Secrets (by name, in its namespace) an object reads without owning them,
/// so that creating or changing one wakes the objects that name it;
/// `referrers`, kinds whose objects name a `K` in `spec.workspaceRef` (in
/// their namespace), so that a change to one wakes the `K` it names.
pub async fn run<K, F, Fut>(
    ctx: Arc<Context>,
    scope: &Scope,
    owns: Vec<ApiResource>,
    reads_secrets: Option<fn(&K) -> Vec<String>>,
    referrers: Vec<ApiResource>,
    reconcile: F,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) where
    K: Kind,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let kind = K::kind(&()).into_owned();
    let children = watcher::Config::default().labels(&format!(
        "app.kubernetes.io/managed-by={}",
        labels::MANAGED_BY
    ));
    let mains = scope.apis(
        &ctx.client,
        Api::<DeserializeGuard<K>>::namespaced,
        Api::all,
    );
    let mut runs = Vec::new();
    for (index, main) in mains.into_iter().enumerate() {
        let mut controller = Controller::new(main, watcher::Config::default().any_semantic());
        for resource in &owns {
            let api = match scope {
                Scope::Cluster => Api::<DynamicObject>::all_with(ctx.client.clone(), resource),
                Scope::Namespaces(ns) => {
                    Api::namespaced_with(ctx.client.clone(), &ns[index], resource)
                }
            };
            controller = controller.owns_with(api, resource.clone(), children.clone());
        }
        if let Some(reads) = reads_secrets {
            // Metadata is all the mapping needs; Secret values are not kept.
            let api = match scope {
                Scope::Cluster => Api::<PartialObjectMeta<Secret>>::all(ctx.client.clone()),
                Scope::Namespaces(ns) => Api::namespaced(ctx.client.clone(), &ns[index]),
            };
            let store = controller.store();
            controller =
                controller.watches_with(api, (), watcher::Config::default(), move |secret| {
                    readers(&store.state(), &secret, reads)
                });
        }
        for resource in &referrers {
            let api = match scope {
                Scope::Cluster => Api::<DynamicObject>::all_with(ctx.client.clone(), resource),
                Scope::Namespaces(ns) => {
                    Api::namespaced_with(ctx.client.clone(), &ns[index], resource)
                }
            };
            controller = controller.watches_with(
                api,
                resource.clone(),
                watcher::Config::default(),
                |referrer| referred(&referrer),
            );
        }
        let reconcile = reconcile.clone();
        let kind = kind.clone();
        let run = controller
            .graceful_shutdown_on(shutdown.clone())
            .run(
                move |guarded: Arc<DeserializeGuard<K>>, ctx: Arc<Context>| {
                    let reconcile = reconcile.clone();
                    let kind = kind.clone();
                    async move { guard(&kind, guarded, ctx, reconcile).await }
                },
                |_: Arc<DeserializeGuard<K>>, _: &Error, _| Action::requeue(RETRY_AFTER),
                ctx.clone(),
            )
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "controller event");
                }
            });
        runs.push(run);
    }
    futures_util::future::join_all(runs).await;
}

/// The object `referrer` names in `spec.workspaceRef`, in its namespace.
fn referred<K: Kind>(referrer: &DynamicObject) -> Option<ObjectRef<DeserializeGuard<K>>> {
    let name = referrer.data["spec"]["workspaceRef"].as_str()?;
    let namespace = referrer.namespace()?;
    Some(ObjectRef::new(name).within(&namespace))
}

/// The objects in `objects` that read `secret`.
fn readers<K: Kind>(
    objects: &[Arc<DeserializeGuard<K>>],
    secret: &PartialObjectMeta<Secret>,
    reads: fn(&K) -> Vec<String>,
) -> Vec<ObjectRef<DeserializeGuard<K>>> {
    let name = secret.name_any();
    objects
        .iter()
        .filter(|guarded| match &guarded.0 {
            Ok(object) => object.namespace() == secret.namespace() && reads(object).contains(&name),
            Err(_) => false,
        })
        .map(|guarded| ObjectRef::from_obj(&**guarded))
        .collect()
}

/// Decodes, times and counts one reconcile.
async fn guard<K, F, Fut>(
    kind: &str,
    guarded: Arc<DeserializeGuard<K>>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, Error>
where
    K: Kind,
    F: Fn(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let object = match &guarded.0 {
        Ok(object) => Arc::new(object.clone()),
        Err(invalid) => {
            // The API server admitted it, so this is an operator/CRD version
            // skew; nothing to do until the object or the operator changes.
            tracing::warn!(
                kind,
                name = invalid.metadata.name.as_deref().unwrap_or(""),
                namespace = invalid.metadata.namespace.as_deref().unwrap_or(""),
                error = %invalid.error,
                "cannot decode object; skipping it"
            );
            return Ok(Action::await_change());
        }
    };
    let started = std::time::Instant::now();
    let result = reconcile(object.clone(), ctx.clone()).await;
    ctx.metrics
        .reconciled(kind, started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        ctx.metrics.failed(kind, error.metric_label());
        tracing::warn!(
            kind,
            name = %object.name_any(),
            namespace = object.namespace().as_deref().unwrap_or(""),
            %error,
            "reconcile failed"
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use entente_crds::{
        validate::{parse_manifests, Resource},
        Workspace,
    };
    use kube::core::error_boundary::InvalidObject;

    use super::*;

    fn edge(namespace: &str) -> Workspace {
        let text = include_str!("../../../examples/edge-ddil/edge.yaml");
        let mut workspace = parse_manifests(text, "edge.yaml")
            .into_iter()
            .find_map(|r| match r.unwrap() {
                Resource::Workspace(ws) => Some(*ws),
                _ => None,
            })
            .unwrap();
        workspace.metadata.namespace = Some(namespace.into());
        workspace
    }

    fn secret(namespace: &str, name: &str) -> PartialObjectMeta<Secret> {
        let mut meta = PartialObjectMeta::<Secret>::default();
        meta.metadata.namespace = Some(namespace.into());
        meta.metadata.name = Some(name.into());
        meta
    }

    #[test]
    fn a_secret_wakes_exactly_the_objects_in_its_namespace_that_read_it() {
        let reads: fn(&Workspace) -> Vec<String> = crate::workspace::controller::secrets_read;
        let undecodable = DeserializeGuard::<Workspace>(Err(InvalidObject {
            error: "bad".into(),
            metadata: Default::default(),
        }));
        let objects = vec![
            Arc::new(DeserializeGuard(Ok(edge("edge")))),
            Arc::new(DeserializeGuard(Ok(edge("elsewhere")))),
            Arc::new(undecodable),
        ];
        let woken = readers(&objects, &secret("edge", "edge-s3"), reads);
        assert_eq!(woken.len(), 1);
        assert_eq!(woken[0].namespace.as_deref(), Some("edge"));
        assert!(readers(&objects, &secret("edge", "unrelated"), reads).is_empty());
    }
}
