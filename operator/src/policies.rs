//! GuestPolicy and AccessPolicy: rendered into their Workspace's
//! RuntimeConfig (the server applies `guests` and `access` live, without a
//! restart), and validated by their own controllers.
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
    config::{AccessRule, GuestRules, RuntimeConfig},
    guest_policy::GuestPolicyStatus,
    policy::Expression,
    AccessPolicy, GuestPolicy, Kind, Workspace,
};
use entente_proto::admin::AccessReply;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{runtime::controller::Action, ResourceExt};

use crate::{
    admin,
    pending::{self, Judgement},
    reconcile::{Context, Error, Health},
    workspace::certs::duration_seconds,
};

/// A GuestPolicy as the server reads it.
pub fn guest_rules(policy: &GuestPolicy) -> Result<GuestRules, String> {
    let spec = &policy.spec;
    let seconds = |field: &str, text: &str| {
        duration_seconds(text)
            .map(|s| s as u64)
            .map_err(|e| format!("spec.{field}: {e}"))
    };
    Ok(GuestRules {
        policy: policy.name_any(),
        emails: spec.invitees.emails.clone(),
        domains: spec.invitees.domains.clone(),
        organisations: spec.invitees.organisations.clone(),
        channels: spec.channels.clone(),
        account_lifetime_seconds: spec
            .account_lifetime
            .as_deref()
            .map(|t| seconds("accountLifetime", t))
            .transpose()?,
        expires_at: spec.expires_at.as_ref().map(|t| t.0.to_string()),
        invitation_lifetime_seconds: seconds("invitationLifetime", &spec.invitation_lifetime)?,
        upload_files: spec.permissions.upload_files,
        direct_messages: spec.permissions.direct_messages,
        attributes: spec.attributes.clone(),
    })
}

/// An AccessPolicy as the server reads it. Only `matchLabels` selects
/// channels; a selector with `matchExpressions` is refused.
pub fn access_rule(policy: &AccessPolicy) -> Result<AccessRule, String> {
    let spec = &policy.spec;
    let selector = spec.channel_selector.as_ref();
    if selector.is_some_and(|s| s.match_expressions.as_ref().is_some_and(|e| !e.is_empty())) {
        return Err(
            "spec.channelSelector.matchExpressions is not supported; select channels with matchLabels"
                .into(),
        );
    }
    Ok(AccessRule {
        policy: policy.name_any(),
        expression: spec.expression.clone(),
        channels: spec.channels.clone(),
        channel_labels: selector
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default(),
        mode: spec.mode,
    })
}

/// Puts the policies naming `workspace` into its config, sorted by name so
/// the rendered file is stable. Policies that cannot be rendered are left
/// out; their own status says why.
pub fn attach(
    config: &mut RuntimeConfig,
    workspace: &Workspace,
    guests: &[GuestPolicy],
    access: &[AccessPolicy],
) {
    let name = workspace.name_any();
    let namespace = workspace.namespace();
    let same = |ns: Option<String>, reference: &str| ns == namespace && reference == name;
    let mut guest_rules: Vec<GuestRules> = guests
        .iter()
        .filter(|p| same(p.namespace(), &p.spec.workspace_ref))
        .filter_map(|p| guest_rules(p).ok())
        .collect();
    guest_rules.sort_by(|a, b| a.policy.cmp(&b.policy));
    let mut access_rules: Vec<AccessRule> = access
        .iter()
        .filter(|p| same(p.namespace(), &p.spec.workspace_ref))
        .filter_map(|p| access_rule(p).ok())
        .collect();
    access_rules.sort_by(|a, b| a.policy.cmp(&b.policy));
    config.guests = guest_rules;
    config.access.policies = access_rules;
}

/// Whether an AccessPolicy can be enforced as written.
pub fn access_health(policy: &AccessPolicy, workspace: &Workspace) -> Health {
    if let Err(message) = access_rule(policy) {
        return Health::stalled("UnsupportedSelector", message);
    }
    let ranks = workspace
        .spec
        .user_attributes
        .ranked
        .iter()
        .map(|r| (r.name.clone(), r.levels.clone()))
        .collect();
    match Expression::compile(&policy.spec.expression, &ranks) {
        Ok(_) => Health::Ready {
            message: format!(
                "rendered into Workspace {:?}; the server enforces it ({:?} mode)",
                workspace.name_any(),
                policy.spec.mode
            ),
        },
        Err(message) => Health::stalled(
            "InvalidExpression",
            format!("spec.expression: {message}; until it is fixed the server closes the channels it gates"),
        ),
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
    pending::judged(
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
