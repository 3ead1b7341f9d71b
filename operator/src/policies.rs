//! GuestPolicy and AccessPolicy controllers: each policy checked and its
//! figures copied into status. What they render into their Workspace's
//! RuntimeConfig is [`entente_crds::render::policies`], shared with
//! `entente up`.
//!
//! The AccessPolicy controller compiles the expression with the same
//! function the server evaluates it with, against the Workspace's ranked
//! attributes, so a policy reported valid is one the server can run. An
//! invalid one is `Degraded` with the compiler's message; it is still
//! rendered, and the server closes the channels it gates to everyone (fail
//! closed) until it is fixed.
//!
//! The server's figures (guests active and expired, pending invitations;
//! users admitted and denied, the last audit entry) are read from its admin
//! API (`Access`) and copied into status every [`FIGURES_EVERY`].

use std::{sync::Arc, time::Duration};

use entente_crds::{
    access_policy::AccessPolicyStatus,
    guest_policy::GuestPolicyStatus,
    render::policies::{access_problem, guest_rules},
    AccessPolicy, GuestPolicy, Kind, Workspace,
};
use entente_proto::admin::AccessReply;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{runtime::controller::Action, ResourceExt};

use crate::{
    admin,
    reconcile::{
        judged::{judged, Judgement},
        Context, Error, Health,
    },
};

/// Whether an AccessPolicy can be enforced as written.
pub fn access_health(policy: &AccessPolicy, workspace: &Workspace) -> Health {
    match access_problem(policy, workspace) {
        Ok(()) => Health::Ready {
            message: format!(
                "rendered into Workspace {:?}; the server enforces it ({:?} mode)",
                workspace.name_any(),
                policy.spec.mode
            ),
        },
        Err((reason, message)) => Health::stalled(reason, message),
    }
}

pub fn guest_health(policy: &GuestPolicy, workspace: &Workspace) -> Health {
    match guest_rules(policy) {
        Ok(_) => Health::Ready {
            message: format!(
                "rendered into Workspace {:?}; admins can invite guests under it",
                workspace.name_any()
            ),
        },
        Err(message) => Health::stalled("InvalidSpec", message),
    }
}

/// How often the server's figures are copied into status.
pub const FIGURES_EVERY: Duration = Duration::from_secs(60);

/// One policy kind as the operator handles it.
trait Policy: Kind {
    /// Whether it can be enforced as written.
    fn check(&self, workspace: &Workspace) -> Health;
    /// Copies this policy's figures from the server's reply into `status`;
    /// false if the server does not report the policy (it has not loaded it).
    fn copy_figures(&self, reply: &AccessReply, status: &mut Self::Status) -> bool;
}

impl Policy for AccessPolicy {
    fn check(&self, workspace: &Workspace) -> Health {
        access_health(self, workspace)
    }

    fn copy_figures(&self, reply: &AccessReply, status: &mut AccessPolicyStatus) -> bool {
        let name = self.name_any();
        let Some(figures) = reply.access_policies.iter().find(|f| f.policy == name) else {
            return false;
        };
        status.admitted = Some(figures.admitted);
        status.denied = Some(figures.denied);
        status.last_audit = figures
            .last_audit
            .parse::<k8s_openapi::jiff::Timestamp>()
            .ok()
            .map(Time);
        true
    }
}

impl Policy for GuestPolicy {
    fn check(&self, workspace: &Workspace) -> Health {
        guest_health(self, workspace)
    }

    fn copy_figures(&self, reply: &AccessReply, status: &mut GuestPolicyStatus) -> bool {
        let name = self.name_any();
        let Some(figures) = reply.guest_policies.iter().find(|f| f.policy == name) else {
            return false;
        };
        status.active_guests = Some(figures.active);
        status.expired_guests = Some(figures.expired);
        status.pending_invitations = Some(figures.pending_invitations);
        true
    }
}

/// Validates `policy` against its Workspace, then copies the server's
/// figures. A server that does not answer leaves the figures as they were
/// and says so; a server that answers without the policy has not loaded it
/// yet (`Progressing`).
async fn reconcile<K: Policy>(policy: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let addresses = ctx.admin.clone();
    judged(
        policy,
        ctx,
        async move |policy: &K, workspace: Option<&Workspace>| {
            let mut status = policy.status().cloned().unwrap_or_default();
            let Some(workspace) = workspace else {
                return Judgement {
                    health: Health::stalled("InvalidSpec", "spec.workspaceRef is required"),
                    status,
                    extra_conditions: Vec::new(),
                    recheck: None,
                };
            };
            let health = match policy.check(workspace) {
                Health::Ready { message } => match admin::access(&addresses, workspace).await {
                    Ok(reply) if policy.copy_figures(&reply, &mut status) => {
                        Health::Ready { message }
                    }
                    Ok(_) => Health::progressing(
                        "ServerLoading",
                        format!("{message}; the server has not loaded it yet"),
                    ),
                    Err(why) => Health::Ready {
                        message: format!("{message}; figures not updated: {why}"),
                    },
                },
                other => other,
            };
            Judgement {
                health,
                status,
                extra_conditions: Vec::new(),
                recheck: Some(FIGURES_EVERY),
            }
        },
    )
    .await
}

pub async fn reconcile_access(
    policy: Arc<AccessPolicy>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    reconcile(policy, ctx).await
}

pub async fn reconcile_guest(policy: Arc<GuestPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile(policy, ctx).await
}
