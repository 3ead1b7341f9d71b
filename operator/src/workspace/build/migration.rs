//! The Job that migrates the database before a new server version rolls out.
//!
//! Its name carries a digest of the image, so a new image gets a new Job (and
//! a change while one runs replaces it) while re-reconciling the same image
//! finds the same Job.

use entente_crds::Workspace;
use k8s_openapi::api::batch::v1::{Job, JobSpec};

use super::deployment::{pod_template, Command};
use crate::workspace::layout::{default_image, metadata, Names};

/// The image the workspace's servers run.
pub fn image(workspace: &Workspace) -> String {
    workspace
        .spec
        .pod
        .image
        .clone()
        .unwrap_or_else(default_image)
}

/// A short, stable digest of `text` (FNV-1a), for object names.
fn digest(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

pub fn name(workspace: &Workspace) -> String {
    format!(
        "{}-migrate-{}",
        Names::of(workspace).workspace,
        digest(&image(workspace))
    )
}

pub fn build(workspace: &Workspace) -> Job {
    let _names = Names::of(workspace);
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

#[cfg(test)]
mod tests {
    use super::digest;

    #[test]
    fn the_digest_is_stable_and_short() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("registry/entente:1"), digest("registry/entente:2"));
        assert_eq!(digest("x").len(), 10);
    }
}
