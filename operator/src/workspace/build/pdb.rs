//! The PodDisruptionBudget that keeps a multi-replica workspace serving
//! through node drains.

use entente_crds::Workspace;
use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use crate::{
    labels,
    workspace::layout::{metadata, Names, COMPONENT},
};

/// One replica may be evicted at a time; a single replica gets no budget
/// (it would block every drain).
pub fn build(workspace: &Workspace) -> Option<PodDisruptionBudget> {
    if workspace.spec.replicas < 2 {
        return None;
    }
    let names = Names::of(workspace);
    Some(PodDisruptionBudget {
        metadata: metadata(workspace, names.server(), COMPONENT),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(&names.workspace, COMPONENT)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}
