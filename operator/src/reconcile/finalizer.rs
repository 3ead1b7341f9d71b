//! Finalizers: cleanup that must run before an object may go (a bucket's
//! deletion policy). Written with JSON merge patches that carry the object's
//! resourceVersion, so a concurrent change makes the write fail with a
//! conflict rather than drop someone else's finalizer.

use std::future::Future;

use kube::{
    api::{Patch, PatchParams},
    runtime::controller::Action,
    Api, Resource, ResourceExt,
};
use serde_json::json;

use super::Error;

async fn set_finalizers<K>(api: &Api<K>, object: &K, finalizers: Vec<String>) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.resource_version(),
        }
    });
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|e| {
        Error::Finalizer(format!(
            "cannot update the finalizers of {}: {e}",
            object.name_any()
        ))
    })
}

/// Runs `apply` on a live object (adding `name` to its finalizers first),
/// or `cleanup` on one being deleted (removing `name` once it succeeded).
pub async fn finalized<K, A, AF, C, CF>(
    api: &Api<K>,
    name: &str,
    object: K,
    apply: A,
    cleanup: C,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    A: FnOnce(K) -> AF,
    AF: Future<Output = Result<Action, Error>>,
    C: FnOnce(K) -> CF,
    CF: Future<Output = Result<Action, Error>>,
{
    let has = object.finalizers().iter().any(|f| f == name);
    if object.meta().deletion_timestamp.is_some() {
        if !has {
            return Ok(Action::await_change());
        }
        let action = cleanup(object.clone()).await?;
        let rest = object
            .finalizers()
            .iter()
            .filter(|f| *f != name)
            .cloned()
            .collect();
        set_finalizers(api, &object, rest).await?;
        return Ok(action);
    }
    let object = if has {
        object
    } else {
        let mut list = object.finalizers().to_vec();
        list.push(name.to_string());
        set_finalizers(api, &object, list).await?
    };
    apply(object).await
}
