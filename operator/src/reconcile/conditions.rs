//! From "how is this object doing" to the four standard conditions, keeping
//! each condition's `lastTransitionTime` unless its status really changes —
//! otherwise every reconcile would rewrite status and wake every watcher.

use entente_crds::common::{condition, Condition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The one-line verdict a reconcile reaches about its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Everything it declares exists and works.
    Ready { message: String },
    /// On its way: children being created or rolled, a migration running.
    Progressing { reason: String, message: String },
    /// Something is wrong. `stalled`: it stays wrong until someone changes
    /// something (a spec, a Secret, an installed dependency); otherwise the
    /// operator keeps trying by itself.
    Degraded {
        reason: String,
        message: String,
        stalled: bool,
    },
    /// The spec is accepted, but this operator version does not act on the kind yet.
    NotImplemented { message: String },
}

impl Health {
    pub fn progressing(reason: &str, message: impl Into<String>) -> Health {
        Health::Progressing {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// Needs someone to act.
    pub fn stalled(reason: &str, message: impl Into<String>) -> Health {
        Health::Degraded {
            reason: reason.into(),
            message: message.into(),
            stalled: true,
        }
    }

    /// Wrong now; the operator keeps retrying.
    pub fn failing(reason: &str, message: impl Into<String>) -> Health {
        Health::Degraded {
            reason: reason.into(),
            message: message.into(),
            stalled: false,
        }
    }

    /// The standard conditions for this verdict, each `(type, status, reason, message)`.
    fn desired(&self) -> [(&'static str, bool, String, String); 4] {
        let ok = |t: &'static str, v: bool, reason: &str| (t, v, reason.to_string(), String::new());
        match self {
            Health::Ready { message } => [
                (condition::READY, true, "Ready".into(), message.clone()),
                ok(condition::RECONCILING, false, "Reconciled"),
                ok(condition::DEGRADED, false, "AsExpected"),
                ok(condition::STALLED, false, "AsExpected"),
            ],
            Health::Progressing { reason, message } => [
                (condition::READY, false, reason.clone(), message.clone()),
                (
                    condition::RECONCILING,
                    true,
                    reason.clone(),
                    message.clone(),
                ),
                ok(condition::DEGRADED, false, "AsExpected"),
                ok(condition::STALLED, false, "AsExpected"),
            ],
            Health::Degraded {
                reason,
                message,
                stalled,
            } => [
                (condition::READY, false, reason.clone(), message.clone()),
                (
                    condition::RECONCILING,
                    !stalled,
                    if *stalled {
                        "Stalled".into()
                    } else {
                        reason.clone()
                    },
                    if *stalled {
                        String::new()
                    } else {
                        "retrying".into()
                    },
                ),
                (condition::DEGRADED, true, reason.clone(), message.clone()),
                if *stalled {
                    (condition::STALLED, true, reason.clone(), message.clone())
                } else {
                    ok(condition::STALLED, false, "Retrying")
                },
            ],
            Health::NotImplemented { message } => [
                (
                    condition::READY,
                    false,
                    "NotImplemented".into(),
                    message.clone(),
                ),
                ok(condition::RECONCILING, false, "NotImplemented"),
                ok(condition::DEGRADED, false, "AsExpected"),
                ok(condition::STALLED, false, "AsExpected"),
            ],
        }
    }
}

/// The conditions to write: the standard four from `health`, then any
/// kind-specific `extra` ones, merged with `existing` so that an unchanged
/// status keeps its `lastTransitionTime`. Conditions of other types that
/// `existing` holds are kept as they are.
pub fn merge(
    existing: &[Condition],
    health: &Health,
    extra: Vec<(&'static str, bool, String, String)>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = Vec::new();
    for (type_, value, reason, message) in health.desired().into_iter().chain(extra) {
        let status = if value { "True" } else { "False" };
        let last_transition_time = match existing.iter().find(|c| c.type_ == type_) {
            Some(old) if old.status == status => old.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: if reason.is_empty() {
                "Unknown".into()
            } else {
                reason
            },
            message,
            last_transition_time,
            observed_generation: generation,
        });
    }
    for old in existing {
        if !out.iter().any(|c| c.type_ == old.type_) {
            out.push(old.clone());
        }
    }
    out
}

/// Whether the Ready condition changed between two condition lists (for Events).
pub fn ready_changed(before: &[Condition], after: &[Condition]) -> bool {
    let ready = |list: &[Condition]| {
        list.iter()
            .find(|c| c.type_ == condition::READY)
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    ready(before) != ready(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn find<'a>(list: &'a [Condition], t: &str) -> &'a Condition {
        list.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn an_unchanged_status_keeps_its_transition_time() {
        let ready = Health::Ready {
            message: "3/3".into(),
        };
        let first = merge(&[], &ready, vec![], Some(1), &at(100));
        let second = merge(&first, &ready, vec![], Some(2), &at(200));
        assert_eq!(find(&second, "Ready").last_transition_time, at(100));
        assert_eq!(find(&second, "Ready").observed_generation, Some(2));
    }

    #[test]
    fn a_changed_status_moves_the_transition_time() {
        let first = merge(
            &[],
            &Health::progressing("Rolling", "1/3"),
            vec![],
            Some(1),
            &at(100),
        );
        let second = merge(
            &first,
            &Health::Ready {
                message: "3/3".into(),
            },
            vec![],
            Some(1),
            &at(200),
        );
        assert_eq!(find(&second, "Ready").last_transition_time, at(200));
        assert_eq!(find(&second, "Ready").status, "True");
        // Degraded stayed False throughout.
        assert_eq!(find(&second, "Degraded").last_transition_time, at(100));
        assert!(ready_changed(&first, &second));
    }

    #[test]
    fn stalled_and_retrying_differ_as_kstatus_reads_them() {
        let stalled = merge(
            &[],
            &Health::stalled("SecretMissing", "x"),
            vec![],
            None,
            &at(1),
        );
        assert_eq!(find(&stalled, "Stalled").status, "True");
        assert_eq!(find(&stalled, "Reconciling").status, "False");
        assert_eq!(find(&stalled, "Degraded").message, "x");
        let failing = merge(&[], &Health::failing("ApiError", "y"), vec![], None, &at(1));
        assert_eq!(find(&failing, "Stalled").status, "False");
        assert_eq!(find(&failing, "Reconciling").status, "True");
        assert_eq!(find(&failing, "Degraded").status, "True");
    }

    #[test]
    fn not_implemented_is_not_ready_and_not_an_error() {
        let list = merge(
            &[],
            &Health::NotImplemented {
                message: "later".into(),
            },
            vec![],
            Some(4),
            &at(1),
        );
        let ready = find(&list, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "NotImplemented")
        );
        assert_eq!(find(&list, "Degraded").status, "False");
    }

    #[test]
    fn kind_specific_and_foreign_conditions_survive() {
        let foreign = Condition {
            type_: "Synced".into(),
            status: "True".into(),
            reason: "Other".into(),
            message: String::new(),
            last_transition_time: at(5),
            observed_generation: None,
        };
        let list = merge(
            std::slice::from_ref(&foreign),
            &Health::Ready {
                message: String::new(),
            },
            vec![("DatabaseReady", true, "Healthy".into(), String::new())],
            None,
            &at(9),
        );
        assert_eq!(find(&list, "Synced"), &foreign);
        assert_eq!(find(&list, "DatabaseReady").status, "True");
    }
}
