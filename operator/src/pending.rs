//! Controllers of the kinds whose behaviour is not built yet
//! (PartnerConnection, CallsCluster, LanguageModel, Bridge, LegalHold). They do what can honestly be done now —
//! the API server already checked the schema and CEL rules; here the
//! Workspace a resource belongs to must exist — and report `Ready=False`
//! with reason `NotImplemented`, never a pretend `Ready=True`.

use std::{sync::Arc, time::Duration};

use entente_crds::{Kind, Workspace};
use kube::{runtime::controller::Action, Api, ResourceExt};

use crate::reconcile::{
    status::{self, Report},
    Context, Error, Health,
};

pub async fn reconcile<K: Kind>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let kind = K::kind(&());
    let mut action = Action::await_change();
    let health = match object.workspace_ref() {
        Some(workspace) => {
            let found = Api::<Workspace>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(workspace)
                .await
                .map_err(|source| Error::Read {
                    what: format!("Workspace {workspace:?}"),
                    source: Box::new(source),
                })?;
            if found.is_none() {
                // Workspaces are not watched from here; look again soon.
                action = Action::requeue(Duration::from_secs(60));
                Health::stalled(
                    "WorkspaceNotFound",
                    format!("Workspace {workspace:?} (spec.workspaceRef) not found in namespace {namespace:?}"),
                )
            } else {
                not_implemented(&kind)
            }
        }
        None => not_implemented(&kind),
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
