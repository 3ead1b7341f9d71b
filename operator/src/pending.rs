//! Controllers of the kinds whose behaviour is not built yet
//! (Bridge, LegalHold). They do what can honestly be done now —
//! the API server already checked the schema and CEL rules; here the
//! Workspace a resource belongs to must exist — and report `Ready=False`
//! with reason `NotImplemented`, never a pretend `Ready=True`.
//!
//! They share [`judged`] with the policy, partner and calls controllers.

use std::sync::Arc;

use entente_crds::{Kind, Workspace};
use kube::runtime::controller::Action;

use crate::reconcile::{
    judged::{judged, Judgement},
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

fn not_implemented(kind: &str) -> Health {
    Health::NotImplemented {
        message: format!(
            "the spec is valid, but this version of entente-operator does not act on {kind} resources yet"
        ),
    }
}
