//! The reconcile of a kind that belongs to a Workspace without children of
//! its own to speak of (the policies, PartnerConnections, CallsClusters, the
//! kinds not built yet): dereference the Workspace it names, let the kind
//! judge its health and status, write them.

use std::{sync::Arc, time::Duration};

use entente_crds::{Kind, Workspace};
use kube::{runtime::controller::Action, Api, ResourceExt};

use super::{
    status::{self, Report},
    Context, Error, Health,
};

/// What a controller decided about one object.
pub struct Judgement<S> {
    pub health: Health,
    /// The kind's own status fields (conditions are set from `health`).
    pub status: S,
    /// Conditions of the kind besides the standard ones: (type, status,
    /// reason, message).
    pub extra_conditions: Vec<(&'static str, bool, String, String)>,
    /// Look again after this long even if nothing changes (figures that
    /// change without an API event).
    pub recheck: Option<Duration>,
}

/// The one reconcile of a kind that only belongs to a Workspace: the
/// Workspace it names (if it names one) must exist, then `judge` decides
/// its health and status, which are written.
pub async fn judged<K: Kind>(
    object: Arc<K>,
    ctx: Arc<Context>,
    judge: impl AsyncFnOnce(&K, Option<&Workspace>) -> Judgement<K::Status>,
) -> Result<Action, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let judgement = match object.workspace_ref() {
        Some(name) => {
            let found = Api::<Workspace>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(name)
                .await
                .map_err(|source| Error::Read {
                    what: format!("Workspace {name:?}"),
                    source: Box::new(source),
                })?;
            match found {
                Some(workspace) => judge(&object, Some(&workspace)).await,
                None => Judgement {
                    health: Health::stalled(
                        "WorkspaceNotFound",
                        format!("Workspace {name:?} (spec.workspaceRef) not found in namespace {namespace:?}"),
                    ),
                    status: object.status().cloned().unwrap_or_default(),
                    extra_conditions: Vec::new(),
                    // Workspaces are not watched from here; look again soon.
                    recheck: Some(Duration::from_secs(60)),
                },
            }
        }
        None => judge(&object, None).await,
    };
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    status::write(
        &api,
        &object,
        Report {
            status: judgement.status,
            health: judgement.health,
            extra_conditions: judgement.extra_conditions,
        },
    )
    .await?;
    Ok(judgement
        .recheck
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}
