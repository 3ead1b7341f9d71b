//! Writing an object's status: only when it differs from what is stored, so
//! a steady state makes no writes and wakes no watchers.

use entente_crds::{common::HasConditions, Kind};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    api::{Patch, PatchParams},
    Api, ResourceExt,
};
use serde_json::json;

use super::{children::FIELD_MANAGER, conditions, Error, Health};

/// What a reconcile decided to report: the kind's own fields in `status`
/// (its observedGeneration and conditions are filled in here).
pub struct Report<S> {
    pub status: S,
    pub health: Health,
    pub extra_conditions: Vec<(&'static str, bool, String, String)>,
}

/// The status to store for `object`, given a reconcile's report: the
/// conditions merged with the stored ones (so unchanged ones keep their
/// transition time). Pure.
pub fn next_status<K: Kind>(object: &K, report: Report<K::Status>, now: &Time) -> K::Status {
    let stored = object.status().map(|s| s.conditions()).unwrap_or_default();
    let generation = object.meta().generation;
    let conditions = conditions::merge(
        stored,
        &report.health,
        report.extra_conditions,
        generation,
        now,
    );
    let mut status = report.status;
    status.set_observed(generation, conditions);
    status
}

/// Stores the status from `report` when it differs from the stored one.
/// Returns whether the Ready condition changed (for an Event).
pub async fn write<K: Kind>(
    api: &Api<K>,
    object: &K,
    report: Report<K::Status>,
) -> Result<bool, Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = next_status(object, report, &now);
    let stored = object.status();
    if stored == Some(&status) {
        return Ok(false);
    }
    let ready_changed = conditions::ready_changed(
        stored.map(|s| s.conditions()).unwrap_or_default(),
        status.conditions(),
    );
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::Status {
        kind: K::kind(&()).into_owned(),
        source: Box::new(source),
    })?;
    Ok(ready_changed)
}
