//! Controllers of the kinds whose behaviour is not built yet
//! (PartnerConnection, CallsCluster, LanguageModel, Bridge, LegalHold). They do what can honestly be done now —
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
    judged(object, ctx, |_, _| not_implemented(&kind)).await
}

/// The one reconcile of a kind that only belongs to a Workspace: the
/// Workspace it names (if it names one) must exist, then `judge` decides
/// its health, which is written to its status.
pub async fn judged<K: Kind>(
    object: Arc<K>,
    ctx: Arc<Context>,
    judge: impl FnOnce(&K, Option<&Workspace>) -> Health,
) -> Result<Action, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let mut action = Action::await_change();
    let health = match object.workspace_ref() {
        Some(name) => {
            let found = Api::<Workspace>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(name)
                .await
                .map_err(|source| Error::Read {
                    what: format!("Workspace {name:?}"),
                    source: Box::new(source),
                })?;
            match found {
                Some(workspace) => judge(&object, Some(&workspace)),
                None => {
                    // Workspaces are not watched from here; look again soon.
                    action = Action::requeue(Duration::from_secs(60));
                    Health::stalled(
                        "WorkspaceNotFound",
                        format!("Workspace {name:?} (spec.workspaceRef) not found in namespace {namespace:?}"),
                    )
                }
            }
        }
        None => judge(&object, None),
    };
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    status::write(
        &api,
        &object,
        Report {
            status: object.status().cloned().unwrap_or_default(),
            health,
            extra_conditions: Vec::new(),
        },
    )
    .await?;
    Ok(action)
}

fn not_implemented(kind: &str) -> Health {
    Health::NotImplemented {
        message: format!(
            "the spec is valid, but this version of entente-operator does not act on {kind} resources yet"
        ),
    }
}
