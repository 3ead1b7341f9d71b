//! The read gate: whether a caller may see a channel at all, decided from
//! their role and membership ([`super::roles`]) and the attribute policies
//! ([`super::policy`]). A channel the caller may not read is reported as
//! absent. Reads only: audit-mode findings go to [`super::findings`].

use crate::server::{
    auth::Caller,
    channels::{named, Channel},
    error::{ApiError, ApiResult},
    state::AppState,
};

use super::{
    findings::Finding,
    policy::{Subject, Verdict},
    roles::{channel_access, Access, ChannelKind, Membership},
};

/// What the access policies say about `subject` in `channel`.
pub fn verdict(state: &AppState, subject: &Subject, channel: &Channel) -> Verdict {
    let labels = channel.labels();
    state.policies().decide(subject, &channel.facts(&labels))
}

/// A channel as seen by one caller, with what they may do with it.
pub struct Seen {
    pub channel: Channel,
    pub access: Access,
}

/// Loads a channel and decides the caller's access; a channel the caller may
/// not read (by role and membership, or because an access policy or their
/// guest policy excludes them) is reported as absent.
pub async fn see(state: &AppState, caller: &Caller, channel_id: &str) -> ApiResult<Seen> {
    let db = &state.db;
    let row = sqlx::query!(
        r#"SELECT c.id, c.kind, c.name, c.display_name, c.purpose, c.header, c.created_at, c.archived_at,
                  c.labels, m.role AS "member_role?", c.translation, COALESCE(m.translate, false) AS "translate!"
           FROM channels c LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $2
           WHERE c.id = $1"#,
        channel_id,
        caller.user_id
    )
    .fetch_optional(db)
    .await?
    .map(|r| {
        let channel = Channel {
            id: r.id,
            kind: r.kind,
            name: r.name,
            display_name: r.display_name,
            purpose: r.purpose,
            header: r.header,
            created_at: r.created_at,
            archived_at: r.archived_at,
            labels: r.labels,
            member: false,
            unread: 0,
            mentions: 0,
            shared_with: Vec::new(),
            translation: r.translation,
            translate: r.translate,
        }
        .with_partners(&state.config());
        (channel, r.member_role)
    });
    let (mut channel, member_role) = row.ok_or_else(|| ApiError::not_found("channel"))?;
    let membership = match member_role.as_deref() {
        None => Membership::None,
        Some("admin") => Membership::ChannelAdmin,
        Some(_) => Membership::Member,
    };
    let kind = ChannelKind::parse(&channel.kind).unwrap_or(ChannelKind::Private);
    let access = channel_access(caller.role, kind, membership, channel.archived_at.is_some());
    if !access.read {
        return Err(ApiError::not_found("channel"));
    }
    let verdict = verdict(state, &caller.subject(), &channel);
    if !verdict.allowed() {
        return Err(ApiError::not_found("channel"));
    }
    if !verdict.would_deny.is_empty() {
        // Recorded off the read path: the read itself writes nothing.
        state
            .findings
            .note(Finding {
                user_id: caller.user_id.clone(),
                channel_id: channel.id.clone(),
                channel_name: channel.name.clone().unwrap_or_default(),
                would_deny: verdict.would_deny,
            })
            .await;
    }
    channel.member = membership != Membership::None;
    Ok(Seen { channel, access })
}

/// The named channels access policies keep from the caller (for filters
/// that work in SQL, such as search).
pub async fn denied(state: &AppState, caller: &Caller) -> ApiResult<Vec<String>> {
    let policies = state.policies();
    if policies.rules.is_empty() && caller.guest_policy.is_none() {
        return Ok(Vec::new());
    }
    let subject = caller.subject();
    Ok(named(&state.db)
        .await?
        .into_iter()
        .filter(|c| !policies.decide(&subject, &c.facts()).allowed())
        .map(|c| c.id)
        .collect())
}

/// Whether `caller` may upload files at all: a guest only if their guest
/// policy allows it.
pub fn may_upload(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let Some(policy) = &caller.guest_policy else {
        return Ok(());
    };
    let allowed = state
        .policies()
        .guests
        .get(policy)
        .is_some_and(|rules| rules.upload_files);
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "guests under guest policy {policy:?} may not upload files"
        )))
    }
}

/// Whether `caller` takes part in the call of `channel_id`: a member who
/// may post in it.
pub async fn may_call(state: &AppState, caller: &Caller, channel_id: &str) -> ApiResult<()> {
    let seen = see(state, caller, channel_id).await?;
    if !seen.channel.member || !seen.access.post {
        return Err(ApiError::forbidden(
            "only members who can post in a channel take part in its call",
        ));
    }
    Ok(())
}
