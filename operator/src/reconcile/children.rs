//! The children of one object: everything a reconcile wants to exist, applied
//! with server-side apply under one field manager, and the operator's earlier
//! children that are no longer wanted, found by label and deleted.
//!
//! Every controller builds a [`Children`] from its pure builders and hands it
//! to [`Children::apply`] then [`Children::prune`]; nothing else writes
//! children.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{
    api::{
        ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
    },
    Api, Client, Resource, ResourceExt,
};
use serde::Serialize;
use serde_json::Value;

use super::{Context, Error};
use crate::labels;

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "entente-operator";

/// One desired object.
#[derive(Clone, Debug)]
pub struct Child {
    pub resource: ApiResource,
    pub name: String,
    /// The whole object, `apiVersion` and `kind` included.
    pub object: Value,
    /// Whether the owner's deletion deletes it (a controller ownerReference).
    /// Databases under `deletionPolicy: Retain` are not owned.
    pub owned: bool,
}

/// What one owner wants to exist.
pub struct Children {
    owner: OwnerReference,
    namespace: String,
    instance: String,
    apply: Vec<Child>,
    /// Children wanted as they are: not applied, not pruned (a generated
    /// password, a Deployment held back while its migration runs).
    keep: BTreeSet<(String, String)>,
}

impl Children {
    pub fn new<K: Resource<DynamicType = ()>>(owner: &K) -> Children {
        Children {
            owner: owner
                .controller_owner_ref(&())
                .expect("the owner was read from the API, so it has a name and uid"),
            namespace: owner.namespace().unwrap_or_default(),
            instance: owner.name_any(),
            apply: Vec::new(),
            keep: BTreeSet::new(),
        }
    }

    /// Adds a typed child, owned by the owner.
    pub fn add<T: Resource<DynamicType = ()> + Serialize>(&mut self, object: &T) {
        let resource = ApiResource::erase::<T>(&());
        let mut value = serde_json::to_value(object).expect("Kubernetes objects serialize");
        value["apiVersion"] = resource.api_version.clone().into();
        value["kind"] = resource.kind.clone().into();
        self.add_value(resource, value, true);
    }

    /// Adds an untyped child (a third-party kind such as a CloudNativePG Cluster).
    pub fn add_value(&mut self, resource: ApiResource, object: Value, owned: bool) {
        let name = object["metadata"]["name"]
            .as_str()
            .expect("builders name their objects")
            .to_string();
        self.apply.push(Child {
            resource,
            name,
            object,
            owned,
        });
    }

    /// What will be applied, as (kind, name), in order.
    pub fn kinds(&self) -> Vec<(String, String)> {
        self.apply
            .iter()
            .map(|c| (c.resource.kind.clone(), c.name.clone()))
            .collect()
    }

    /// Marks an existing child as still wanted, without writing it.
    pub fn keep(&mut self, resource: &ApiResource, name: impl Into<String>) {
        self.keep.insert((resource.kind.clone(), name.into()));
    }

    fn wanted(&self, kind: &str, name: &str) -> bool {
        self.keep.contains(&(kind.to_string(), name.to_string()))
            || self
                .apply
                .iter()
                .any(|c| c.resource.kind == kind && c.name == name)
    }

    /// Server-side applies every child, forcing ownership of the fields it
    /// sets (the operator is the one writer of its children).
    pub async fn apply(&self, client: &Client) -> Result<(), Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for child in &self.apply {
            let mut object = child.object.clone();
            if child.owned {
                object["metadata"]["ownerReferences"] =
                    serde_json::to_value([&self.owner]).expect("ownerReferences serialize");
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &self.namespace, &child.resource);
            api.patch(&child.name, &params, &Patch::Apply(&object))
                .await
                .map_err(|source| Error::Apply {
                    kind: child.resource.kind.clone(),
                    name: child.name.clone(),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    /// What this set wants, as one comparable text.
    fn fingerprint(&self) -> String {
        let mut wanted: Vec<String> = self
            .apply
            .iter()
            .map(|c| format!("{}/{}", c.resource.kind, c.name))
            .chain(
                self.keep
                    .iter()
                    .map(|(kind, name)| format!("{kind}/{name}")),
            )
            .collect();
        wanted.sort();
        wanted.join(",")
    }

    /// Deletes the owner's children of `kinds` that are no longer wanted.
    /// Only objects carrying the operator's labels for this owner *and* a
    /// controller reference to it (same uid) are candidates, so nothing a
    /// person made, and nothing of another owner, is ever touched. A kind the
    /// cluster does not serve (CloudNativePG not installed) is skipped.
    ///
    /// A child can only become unwanted when the wanted set changes, so when
    /// it is the same as at this owner's last prune (within
    /// [`RECHECK_AFTER`](super::context::RECHECK_AFTER)) the lists are skipped.
    /// Returns the deleted objects as `Kind/name`.
    pub async fn prune(&self, ctx: &Context, kinds: &[ApiResource]) -> Result<Vec<String>, Error> {
        let key = format!("pruned/{}", self.owner.uid);
        let wanted = self.fingerprint();
        if ctx.recently_verified(&key).as_deref() == Some(wanted.as_str()) {
            return Ok(Vec::new());
        }
        let deleted = self.prune_now(&ctx.client, kinds).await?;
        ctx.verified(key, wanted);
        Ok(deleted)
    }

    async fn prune_now(
        &self,
        client: &Client,
        kinds: &[ApiResource],
    ) -> Result<Vec<String>, Error> {
        let selector = format!(
            "app.kubernetes.io/managed-by={},app.kubernetes.io/instance={}",
            labels::MANAGED_BY,
            self.instance
        );
        let mut deleted = Vec::new();
        for resource in kinds {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &self.namespace, resource);
            let list = match api.list(&ListParams::default().labels(&selector)).await {
                Ok(list) => list,
                Err(e) if is_not_found(&e) => continue,
                Err(source) => {
                    return Err(Error::Prune {
                        kind: resource.kind.clone(),
                        source: Box::new(source),
                    })
                }
            };
            for object in list.items {
                let name = object.name_any();
                let ours = object
                    .owner_references()
                    .iter()
                    .any(|o| o.uid == self.owner.uid && o.controller == Some(true));
                if !ours || self.wanted(&resource.kind, &name) {
                    continue;
                }
                // Background: a pruned Job takes its pods with it.
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    ..Default::default()
                };
                match api.delete(&name, &params).await {
                    Ok(_) => deleted.push(format!("{}/{name}", resource.kind)),
                    Err(e) if is_not_found(&e) => {}
                    Err(source) => {
                        return Err(Error::Prune {
                            kind: resource.kind.clone(),
                            source: Box::new(source),
                        })
                    }
                }
            }
        }
        Ok(deleted)
    }
}

/// The API answered 404: no such object, or no such kind.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// An [`ApiResource`] for a kind not compiled in (CloudNativePG's).
pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}
