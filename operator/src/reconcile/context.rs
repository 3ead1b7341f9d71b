//! What every reconcile gets: the API client, metrics, the event recorder and
//! where the operator itself runs.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

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
    /// External facts checked recently (a bucket exists with the options a
    /// spec asks for), by a key naming what was checked: re-checked after
    /// [`RECHECK_AFTER`], so a thousand workspaces do not ask the object
    /// store the same question on every resync.
    verified: Mutex<HashMap<String, (Instant, String)>>,
    /// Where workspaces' admin APIs answer.
    pub admin: crate::admin::Addresses,
}

/// How long a checked external fact is trusted.
pub const RECHECK_AFTER: Duration = Duration::from_secs(600);

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
            verified: Mutex::new(HashMap::new()),
            admin: Default::default(),
        }
    }

    /// Reach every workspace's admin API at `addresses` instead.
    pub fn with_admin(mut self, addresses: crate::admin::Addresses) -> Context {
        self.admin = addresses;
        self
    }

    /// What was recorded for `key` within [`RECHECK_AFTER`], if anything.
    pub fn recently_verified(&self, key: &str) -> Option<String> {
        let verified = self.verified.lock().expect("not poisoned");
        verified
            .get(key)
            .filter(|(at, _)| at.elapsed() < RECHECK_AFTER)
            .map(|(_, value)| value.clone())
    }

    pub fn verified(&self, key: String, value: String) {
        self.verified
            .lock()
            .expect("not poisoned")
            .insert(key, (Instant::now(), value));
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
