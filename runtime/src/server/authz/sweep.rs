//! Enforcement over time: members who stop matching lose their channels,
//! guests whose access ended leave, and policy changes are audited.
//!
//! A sweep runs at start-up, whenever the config changes, and every
//! [`SWEEP_EVERY`]; a user's attribute change and a channel's label change
//! sweep that user or channel at once, inside the request. Each removal is a
//! `member_removed` event (which ends the user's live subscription to the
//! channel) and an audit entry, in one transaction. Every replica sweeps;
//! the row that is deleted or updated decides which one records it.

use std::{collections::BTreeMap, time::Duration};

use entente_crds::policy::ChannelFacts;

use super::{
    findings::{self, Finding},
    policy::{Policies, Subject, Verdict},
    roles::Role,
};
use crate::server::{
    audit::{self, kind},
    channels, db,
    error::ApiResult,
    state::AppState,
};

/// How often everything is re-checked (guest expiry is noticed within this).
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// A user's attributes as stored.
type Attributes = sqlx::types::Json<serde_json::Map<String, serde_json::Value>>;

/// One membership of a named channel, with what policies need to decide it.
struct Membership {
    channel_id: String,
    name: String,
    kind: String,
    labels: sqlx::types::Json<BTreeMap<String, String>>,
    user_id: String,
    role: String,
    attributes: Attributes,
    guest_policy: Option<String>,
}

impl Membership {
    fn verdict(&self, policies: &Policies) -> Verdict {
        policies.decide(
            &Subject {
                role: Role::parse(&self.role).unwrap_or(Role::Guest),
                attributes: &self.attributes,
                guest_policy: self.guest_policy.as_deref(),
            },
            &ChannelFacts {
                name: &self.name,
                kind: &self.kind,
                labels: &self.labels,
            },
        )
    }
}

/// Memberships of named channels, of one user, one channel, or all.
async fn memberships(
    state: &AppState,
    user_id: Option<&str>,
    channel_id: Option<&str>,
) -> Result<Vec<Membership>, sqlx::Error> {
    // `name!`: named channels (public, private) always have a name.
    sqlx::query_as!(
        Membership,
        r#"SELECT c.id AS channel_id, c.name AS "name!", c.kind,
                  c.labels AS "labels: sqlx::types::Json<BTreeMap<String, String>>",
                  u.id AS user_id, u.role,
                  u.attributes AS "attributes: Attributes",
                  u.guest_policy
           FROM channel_members m JOIN channels c ON c.id = m.channel_id JOIN users u ON u.id = m.user_id
           WHERE c.kind IN ('public', 'private') AND u.origin IS NULL
             AND ($1::text IS NULL OR m.user_id = $1)
             AND ($2::text IS NULL OR m.channel_id = $2)"#,
        user_id,
        channel_id
    )
    .fetch_all(&state.db)
    .await
}

/// Applies the policies to `rows`: removes members they deny, records
/// would-be denials of audit-mode policies once each.
async fn enforce(
    state: &AppState,
    rows: Vec<Membership>,
    actor: Option<&str>,
) -> Result<(), db::Error> {
    let policies = state.policies();
    for row in rows {
        let channel = ChannelFacts {
            name: &row.name,
            kind: &row.kind,
            labels: &row.labels,
        };
        let guest_rules = row.guest_policy.is_some();
        if !guest_rules && !policies.gated(&channel) {
            continue;
        }
        let verdict = row.verdict(&policies);
        if !verdict.allowed() {
            let first = &verdict.denied[0];
            channels::remove_member(
                state,
                &row.channel_id,
                &row.user_id,
                Some(audit::Entry {
                    kind: kind::ACCESS_REVOKED,
                    actor_id: actor,
                    user_id: Some(&row.user_id),
                    channel_id: Some(&row.channel_id),
                    policy: Some(&first.policy),
                    reason: verdict.reasons(),
                    data: serde_json::json!({"channel": row.name}),
                }),
            )
            .await?;
        }
        findings::record(
            &state.db,
            &Finding {
                user_id: row.user_id.clone(),
                channel_id: row.channel_id.clone(),
                channel_name: row.name.clone(),
                would_deny: verdict.would_deny,
            },
        )
        .await?;
    }
    Ok(())
}

/// Re-checks every channel of one user (after their attributes changed).
pub async fn user(state: &AppState, user_id: &str, actor: Option<&str>) -> ApiResult<()> {
    let rows = memberships(state, Some(user_id), None).await?;
    Ok(enforce(state, rows, actor).await?)
}

/// Re-checks every member of one channel (after its labels changed).
pub async fn channel(state: &AppState, channel_id: &str, actor: Option<&str>) -> ApiResult<()> {
    let rows = memberships(state, None, Some(channel_id)).await?;
    Ok(enforce(state, rows, actor).await?)
}

/// Everything: policy changes, guest expiry, every membership.
pub async fn all(state: &AppState) -> Result<(), db::Error> {
    audit_policy_changes(state).await?;
    expire_guests(state).await?;
    let rows = memberships(state, None, None).await?;
    enforce(state, rows, None).await
}

/// Guests whose access ended (their date passed, or their GuestPolicy is
/// gone) can no longer sign in and leave every channel.
pub async fn expire_guests(state: &AppState) -> Result<(), db::Error> {
    let policies: Vec<String> = state.policies().guests.keys().cloned().collect();
    let due = sqlx::query!(
        "SELECT id, guest_policy FROM users
         WHERE role = 'guest' AND expired_at IS NULL AND deactivated_at IS NULL
           AND (access_expires_at <= now() OR (guest_policy IS NOT NULL AND NOT (guest_policy = ANY($1))))",
        &policies
    )
    .fetch_all(&state.db)
    .await?;
    for row in due {
        let (user_id, policy) = (row.id, row.guest_policy);
        let mut tx = state.db.begin().await?;
        if !db::users::expire(&mut *tx, &user_id).await? {
            continue; // another replica did it
        }
        db::tokens::revoke_all(&mut *tx, &user_id).await?;
        let reason = match &policy {
            Some(p) if !policies.contains(p) => format!("guest policy {p:?} was removed"),
            _ => "the guest's access period ended".to_string(),
        };
        let left = sqlx::query_scalar!(
            "SELECT channel_id FROM channel_members WHERE user_id = $1",
            user_id
        )
        .fetch_all(&mut *tx)
        .await?;
        for channel_id in &left {
            channels::remove_in(
                &mut tx,
                &state.config(),
                channel_id,
                &user_id,
                Some(&reason),
            )
            .await?;
        }
        audit::record(
            &mut *tx,
            audit::Entry {
                kind: kind::GUEST_EXPIRED,
                user_id: Some(&user_id),
                policy: policy.as_deref(),
                reason,
                data: serde_json::json!({"channelsLeft": left.len()}),
                ..Default::default()
            },
        )
        .await?;
        // Last, so the guest's sockets hear they left before they close.
        crate::server::sessions::changed(&state.session_cache, &mut *tx, &user_id).await?;
        db::commit(tx).await?;
    }
    Ok(())
}

/// Records added, changed and removed AccessPolicies and GuestPolicies,
/// compared with what was in effect before (kept in the database, so each
/// change is recorded once across replicas and restarts).
pub async fn audit_policy_changes(state: &AppState) -> Result<(), db::Error> {
    let config = state.config();
    let mut now: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for rule in &config.access.policies {
        now.insert(
            format!("AccessPolicy/{}", rule.policy),
            serde_json::to_value(rule).expect("serializes"),
        );
    }
    for rules in &config.guests {
        now.insert(
            format!("GuestPolicy/{}", rules.policy),
            serde_json::to_value(rules).expect("serializes"),
        );
    }
    let mut tx = state.db.begin().await?;
    db::audit::lock_policies_seen(&mut tx).await?;
    let before: BTreeMap<String, serde_json::Value> =
        sqlx::query!("SELECT name, definition FROM access_policies_seen")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|seen| (seen.name, seen.definition))
            .collect();
    let names: std::collections::BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    for name in names {
        let (what, reason) = match (before.get(name), now.get(name)) {
            (None, Some(_)) => (kind::POLICY_ADDED, format!("{name} came into effect")),
            (Some(old), Some(new)) if old != new => {
                (kind::POLICY_CHANGED, format!("{name} changed"))
            }
            (Some(_), None) => (kind::POLICY_REMOVED, format!("{name} was removed")),
            _ => continue,
        };
        db::audit::set_policy_seen(&mut *tx, name, now.get(name)).await?;
        let policy = name.split_once('/').map(|(_, n)| n);
        audit::record(
            &mut *tx,
            audit::Entry {
                kind: what,
                policy,
                reason,
                data: serde_json::json!({"before": before.get(name), "after": now.get(name)}),
                ..Default::default()
            },
        )
        .await?;
    }
    db::commit(tx).await
}

/// Sweeps now, then every [`SWEEP_EVERY`] or when asked, until shutdown.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    loop {
        if let Err(e) = all(&state).await {
            tracing::warn!(error = %e, "access sweep failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = state.sweep_requested.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
