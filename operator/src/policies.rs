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
//! Not built yet: copying the server's figures (guests active and expired,
//! admitted and denied counts) from its admin endpoint into status. The
//! server reports them on admin gRPC (`Access`); the operator does not read
//! the admin endpoint yet.

use std::sync::Arc;

use entente_crds::{
    config::{AccessRule, GuestRules, RuntimeConfig},
    policy::Expression,
    AccessPolicy, GuestPolicy, Workspace,
};
use kube::{runtime::controller::Action, ResourceExt};

use crate::{
    pending,
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

/// Both kinds require `spec.workspaceRef`; a policy without one is judged
/// against nothing.
fn judge<K>(check: fn(&K, &Workspace) -> Health) -> impl FnOnce(&K, Option<&Workspace>) -> Health {
    move |policy, workspace| match workspace {
        Some(workspace) => check(policy, workspace),
        None => Health::stalled("InvalidSpec", "spec.workspaceRef is required"),
    }
}

pub async fn reconcile_access(
    policy: Arc<AccessPolicy>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    pending::judged(policy, ctx, judge(access_health)).await
}

pub async fn reconcile_guest(policy: Arc<GuestPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    pending::judged(policy, ctx, judge(guest_health)).await
}
