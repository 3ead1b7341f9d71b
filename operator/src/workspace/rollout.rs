//! When a new server image may roll out: only after `entente-server migrate`
//! of that image succeeded against the database. A fresh workspace has no
//! old servers to protect, and `serve` migrates on start, so it rolls at once.

use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job};

use super::layout::COMPONENT;
use crate::reconcile::Health;

/// Where the migration Job of the wanted image is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Missing,
    Running,
    Succeeded,
    Failed(String),
}

impl JobState {
    pub fn of(job: Option<&Job>) -> JobState {
        let Some(job) = job else {
            return JobState::Missing;
        };
        let conditions = job
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default();
        let holds = |t: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == t && c.status == "True")
        };
        if holds("Complete").is_some() {
            JobState::Succeeded
        } else if let Some(failed) = holds("Failed") {
            JobState::Failed(
                failed
                    .message
                    .clone()
                    .or_else(|| failed.reason.clone())
                    .unwrap_or_else(|| "the Job failed".into()),
            )
        } else {
            JobState::Running
        }
    }
}

/// What this reconcile does about the Deployment and the migration Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Apply the Deployment as built; otherwise leave it exactly as it is.
    pub roll: bool,
    /// Apply the migration Job of the wanted image.
    pub run_job: bool,
    /// Keep an existing migration Job of the wanted image (not prune it).
    pub keep_job: bool,
    /// Why the rollout waits or failed; `None` when it is not held.
    pub held: Option<Health>,
}

/// The image the Deployment's server container runs now.
pub fn deployed_image(deployment: &Deployment) -> Option<&str> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == COMPONENT)?
        .image
        .as_deref()
}

pub fn plan(wanted_image: &str, deployed: Option<&str>, job: &JobState) -> Plan {
    let exists = *job != JobState::Missing;
    match deployed {
        // New, or already on this image: apply as built (replicas, config, …).
        None => Plan {
            roll: true,
            run_job: false,
            keep_job: exists,
            held: None,
        },
        Some(image) if image == wanted_image => Plan {
            roll: true,
            run_job: false,
            keep_job: exists,
            held: None,
        },
        Some(image) => match job {
            JobState::Succeeded => Plan {
                roll: true,
                run_job: false,
                keep_job: true,
                held: None,
            },
            JobState::Missing | JobState::Running => Plan {
                roll: false,
                run_job: true,
                keep_job: true,
                held: Some(Health::progressing(
                    "Migrating",
                    format!(
                        "migrating the database for {wanted_image}; servers stay on {image} until it succeeds"
                    ),
                )),
            },
            JobState::Failed(message) => Plan {
                roll: false,
                run_job: false,
                keep_job: true,
                held: Some(Health::stalled(
                    "MigrationFailed",
                    format!(
                        "the database migration for {wanted_image} failed ({message}); servers stay on \
                         {image}. Fix the cause and change spec.pod.image to retry"
                    ),
                )),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_workspace_rolls_at_once() {
        let p = plan("img:2", None, &JobState::Missing);
        assert!(p.roll && !p.run_job && p.held.is_none());
    }

    #[test]
    fn the_same_image_rolls_spec_changes_without_a_job() {
        let p = plan("img:2", Some("img:2"), &JobState::Missing);
        assert!(p.roll && !p.run_job && !p.keep_job);
    }

    #[test]
    fn a_new_image_waits_for_its_migration() {
        for state in [JobState::Missing, JobState::Running] {
            let p = plan("img:3", Some("img:2"), &state);
            assert!(!p.roll && p.run_job && p.keep_job, "{state:?}");
            assert!(matches!(p.held, Some(Health::Progressing { .. })));
        }
        let p = plan("img:3", Some("img:2"), &JobState::Succeeded);
        assert!(p.roll && !p.run_job && p.keep_job && p.held.is_none());
    }

    #[test]
    fn a_failed_migration_holds_the_old_servers_and_says_why() {
        let p = plan(
            "img:3",
            Some("img:2"),
            &JobState::Failed("BackoffLimitExceeded".into()),
        );
        assert!(!p.roll && !p.run_job && p.keep_job);
        match p.held {
            Some(Health::Degraded {
                message, stalled, ..
            }) => {
                assert!(stalled);
                assert!(message.contains("BackoffLimitExceeded") && message.contains("img:2"));
            }
            other => panic!("{other:?}"),
        }
    }
}
