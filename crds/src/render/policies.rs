//! GuestPolicies and AccessPolicies rendered into their Workspace's
//! RuntimeConfig (the server applies `guests` and `access` live, without a
//! restart), and whether an AccessPolicy can be enforced as written.

use kube::ResourceExt;

use super::certs::duration_seconds;
use crate::{
    config::{AccessRule, GuestRules, RuntimeConfig},
    policy::Expression,
    AccessPolicy, GuestPolicy, Workspace,
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

/// Why an AccessPolicy cannot be enforced as written: a reason (a
/// condition's `reason`) and what to fix. The AccessPolicy controller and
/// `entente up` refuse with the same words.
pub fn access_problem(
    policy: &AccessPolicy,
    workspace: &Workspace,
) -> Result<(), (&'static str, String)> {
    access_rule(policy).map_err(|message| ("UnsupportedSelector", message))?;
    let ranks = workspace
        .spec
        .user_attributes
        .ranked
        .iter()
        .map(|r| (r.name.clone(), r.levels.clone()))
        .collect();
    Expression::compile(&policy.spec.expression, &ranks)
        .map(|_| ())
        .map_err(|message| {
            (
                "InvalidExpression",
                format!("spec.expression: {message}; until it is fixed the server closes the channels it gates"),
            )
        })
}
