//! What every reconcile gets: the API client, metrics, the event recorder and
//! where the operator itself runs.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    runtime::events::{Event, EventType, Recorder, Reporter},
    Client,
};

use super::metrics::Metrics;

pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    recorder: Recorder,
    /// The operator's namespace: only it may reach workspaces' admin ports.
    pub operator_namespace: String,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Metrics,
        operator_namespace: String,
        instance: String,
    ) -> Context {
        let reporter = Reporter {
            controller: "entente-operator".into(),
            instance: Some(instance),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            operator_namespace,
        }
    }

    /// Records an Event on `object`. Events are a courtesy: failing to write
    /// one is logged, never fails a reconcile.
    pub async fn event(&self, object: &ObjectReference, warning: bool, reason: &str, note: String) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(truncate(note)),
            action: reason.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, object).await {
            tracing::debug!(%error, reason, "cannot record event");
        }
    }
}

/// Event notes are limited to 1 KiB by the API server.
fn truncate(mut note: String) -> String {
    if note.len() > 1000 {
        let mut end = 1000;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push('…');
    }
    note
}
