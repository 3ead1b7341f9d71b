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

use std::{sync::Arc, time::Duration};

use entente_crds::{
    config::{AccessRule, GuestRules, RuntimeConfig},
    policy::Expression,
    AccessPolicy, GuestPolicy, Kind, Workspace,
};
use kube::{runtime::controller::Action, Api, ResourceExt};

use crate::{
    reconcile::{
        status::{self, Report},
        Context, Error, Health,
    },
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

/// The Workspace `object` belongs to, or the health that says it is missing.
async fn workspace_of<K: Kind>(
    object: &K,
    ctx: &Context,
) -> Result<Result<Workspace, Health>, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.workspace_ref().unwrap_or_default().to_string();
    let found = Api::<Workspace>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Workspace {name:?}"),
            source: Box::new(source),
        })?;
    Ok(found.ok_or_else(|| {
        Health::stalled(
            "WorkspaceNotFound",
            format!("Workspace {name:?} (spec.workspaceRef) not found in namespace {namespace:?}"),
        )
    }))
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

async fn reconcile<K: Kind>(
    object: Arc<K>,
    ctx: Arc<Context>,
    judge: fn(&K, &Workspace) -> Health,
) -> Result<Action, Error> {
    let (health, action) = match workspace_of(&*object, &ctx).await? {
        Ok(workspace) => (judge(&object, &workspace), Action::await_change()),
        // Workspaces are not watched from here; look again soon.
        Err(missing) => (missing, Action::requeue(Duration::from_secs(60))),
    };
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    status::write(
        &api,
        &object,
        Report {
            status: object.status().cloned().unwrap_or_default(),
            health,
            extra_conditions: Vec::new(),
        },
    )
    .await?;
    Ok(action)
}

pub async fn reconcile_access(
    policy: Arc<AccessPolicy>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    reconcile(policy, ctx, access_health).await
}

pub async fn reconcile_guest(policy: Arc<GuestPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile(policy, ctx, guest_health).await
}
