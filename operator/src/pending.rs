//! Controllers of the kinds whose behaviour is not built yet
//! (LanguageModel, Bridge, LegalHold). They do what can honestly be done now —
//! the API server already checked the schema and CEL rules; here the
//! Workspace a resource belongs to must exist — and report `Ready=False`
//! with reason `NotImplemented`, never a pretend `Ready=True`.
//!
//! [`judged`] is the reconcile they share with the policy controllers.

use std::{sync::Arc, time::Duration};

use entente_crds::{Kind, Workspace};
use kube::{runtime::controller::Action, Api, ResourceExt};

use crate::reconcile::{
    status::{self, Report},
    Context, Error, Health,
};

pub async fn reconcile<K: Kind>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let kind = K::kind(&()).into_owned();
    judged(object, ctx, async |object: &K, _: Option<&Workspace>| {
        Judgement {
            health: not_implemented(&kind),
            status: object.status().cloned().unwrap_or_default(),
            extra_conditions: Vec::new(),
            recheck: None,
        }
    })
    .await
}

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

fn not_implemented(kind: &str) -> Health {
    Health::NotImplemented {
        message: format!(
            "the spec is valid, but this version of entente-operator does not act on {kind} resources yet"
        ),
    }
}
