//! What every pod the operator makes shares: a restricted security context
//! (non-root, no privilege escalation, a read-only root file system, no
//! capabilities, the runtime's default seccomp profile), and where the
//! admin's `pod` settings place it (pull secrets, node selector,
//! tolerations, priority class), and the scratch `/tmp` a read-only root
//! leaves them.

use std::collections::BTreeMap;

use entente_crds::common::PodSettings;
use k8s_openapi::{
    api::core::v1::{
        Capabilities, EmptyDirVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
        SeccompProfile, SecurityContext, Volume, VolumeMount,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

/// The pod's security context, running as `uid`.
pub fn pod_security(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container's security context.
pub fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The one place a container may write, its root file system being
/// read-only: an empty `/tmp`, as the volume and its mount.
pub fn scratch() -> (Volume, VolumeMount) {
    (
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        },
    )
}

/// A pod template: the admin's extra labels under the operator's `labels`
/// (which win: the selector must hold), the admin's annotations, and
/// `spec` placed as `settings` ask.
pub fn template(
    settings: &PodSettings,
    labels: BTreeMap<String, String>,
    spec: PodSpec,
) -> PodTemplateSpec {
    let mut all = settings.labels.clone();
    all.extend(labels);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(all),
            annotations: (!settings.annotations.is_empty()).then(|| settings.annotations.clone()),
            ..Default::default()
        }),
        spec: Some(placed(settings, spec)),
    }
}

/// `spec` placed as `settings` ask.
pub fn placed(settings: &PodSettings, spec: PodSpec) -> PodSpec {
    PodSpec {
        image_pull_secrets: (!settings.image_pull_secrets.is_empty())
            .then(|| settings.image_pull_secrets.clone()),
        node_selector: (!settings.node_selector.is_empty()).then(|| settings.node_selector.clone()),
        tolerations: (!settings.tolerations.is_empty()).then(|| settings.tolerations.clone()),
        priority_class_name: settings.priority_class_name.clone(),
        ..spec
    }
}
