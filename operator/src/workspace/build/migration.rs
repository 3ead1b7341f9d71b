//! The Job that migrates the database before a new server version rolls out.
//!
//! Its name carries a digest of the image, so a new image gets a new Job (and
//! a change while one runs replaces it) while re-reconciling the same image
//! finds the same Job.

use entente_crds::Workspace;
use k8s_openapi::api::batch::v1::{Job, JobSpec};

use super::deployment::{pod_template, Command};
use crate::workspace::layout::{default_image, digest, metadata, Names};

/// The image the workspace's servers run.
pub fn image(workspace: &Workspace) -> String {
    workspace
        .spec
        .pod
        .image
        .clone()
        .unwrap_or_else(default_image)
}

pub fn name(workspace: &Workspace) -> String {
    format!(
        "{}-migrate-{}",
        Names::of(workspace).workspace,
        digest(&image(workspace))
    )
}

pub fn build(workspace: &Workspace) -> Job {
    Job {
        metadata: metadata(workspace, name(workspace), "migration"),
        spec: Some(JobSpec {
            // A failed migration is reported, not retried forever.
            backoff_limit: Some(2),
            active_deadline_seconds: Some(1800),
            ttl_seconds_after_finished: Some(86_400),
            template: pod_template(workspace, Command::Migrate),
            ..Default::default()
        }),
        ..Default::default()
    }
}
