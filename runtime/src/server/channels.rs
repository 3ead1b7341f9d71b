//! Channels: public, private, direct (1:1) and group conversations, their
//! members, and the list a caller sees.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use std::collections::BTreeMap;

use entente_crds::{config::RuntimeConfig, policy::ChannelFacts};

use super::{
    audit::{self, kind},
    auth::{self, Caller},
    authz::{
        gate::{see, verdict},
        policy::Subject,
        roles::{ChannelKind, Role},
    },
    db::{self, new_id},
    error::{ApiError, ApiResult},
    events::{self, Change, ChannelRef, MemberChange},
    federation,
    input::{self, Valid},
    state::AppState,
};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub kind: String,
    pub name: Option<String>,
    pub display_name: String,
    pub purpose: String,
    /// A line shown above the posts (links, the on-call rota).
    pub header: String,
    pub created_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    /// Labels access policies select channels by (e.g. `classification`).
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
    /// Whether the caller is a member.
    #[sqlx(default)]
    pub member: bool,
    /// Posts by others after the caller's read marker (members only).
    #[sqlx(default)]
    pub unread: i64,
    /// Of those, the ones that mention the caller.
    #[sqlx(default)]
    pub mentions: i64,
    /// The organisations of the partner workspaces this channel is shared
    /// with (empty: only this workspace's).
    #[sqlx(default)]
    pub shared_with: Vec<String>,
    /// Whether posts here are translated for the members who read another
    /// language (its admins turn it on).
    #[sqlx(default)]
    pub translation: bool,
    /// Whether the caller has them translated here (a member's own
    /// choice; on unless they opted out).
    #[sqlx(default)]
    pub translate: bool,
}

impl Channel {
    /// The channel with [`Channel::shared_with`] filled in from the
    /// partners `config` declares.
    pub fn with_partners(mut self, config: &entente_crds::config::RuntimeConfig) -> Self {
        if let Some(name) = &self.name {
            self.shared_with = config
                .federation
                .partners
                .iter()
                .filter(|p| p.channels.iter().any(|c| c.name.eq_ignore_ascii_case(name)))
                .map(|p| p.organisation.clone())
                .collect();
        }
        self
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        serde_json::from_value(self.labels.clone()).unwrap_or_default()
    }

    /// What access policies decide on, with `labels` from [`Channel::labels`].
    pub fn facts<'a>(&'a self, labels: &'a BTreeMap<String, String>) -> ChannelFacts<'a> {
        ChannelFacts {
            name: self.name.as_deref().unwrap_or(""),
            kind: &self.kind,
            labels,
        }
    }
}

/// Every channel the caller may see: those they belong to, and for non-guests
/// the public ones, with unread and mention counts for their own.
pub async fn list(state: &AppState, caller: &Caller) -> ApiResult<Vec<Channel>> {
    let channels = sqlx::query_as!(
        Channel,
        r#"SELECT c.id, c.kind, c.name, c.display_name, c.purpose, c.header, c.created_at, c.archived_at,
                  c.labels, (m.user_id IS NOT NULL) AS "member!",
                  COALESCE((SELECT count(*) FROM posts p
                            WHERE p.channel_id = c.id AND p.seq > m.last_read_seq
                              AND p.deleted_at IS NULL AND p.user_id <> $1), 0) AS "unread!",
                  COALESCE((SELECT count(*) FROM posts p JOIN mentions x ON x.post_id = p.id AND x.user_id = $1
                            WHERE p.channel_id = c.id AND p.seq > m.last_read_seq
                              AND p.deleted_at IS NULL), 0) AS "mentions!",
                  ARRAY[]::text[] AS "shared_with!",
                  c.translation, COALESCE(m.translate, false) AS "translate!"
           FROM channels c LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1
           WHERE m.user_id IS NOT NULL OR (c.kind = 'public' AND $2)
           ORDER BY c.created_at, c.id"#,
        caller.user_id,
        caller.role != Role::Guest
    )
    .fetch_all(&state.db)
    .await?;
    let subject = caller.subject();
    let config = state.config();
    Ok(channels
        .into_iter()
        .filter(|c| verdict(state, &subject, c).allowed())
        .map(|c| c.with_partners(&config))
        .collect())
}

/// A public or private channel, as policies see it.
pub struct Named {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub labels: sqlx::types::Json<BTreeMap<String, String>>,
}

impl Named {
    pub fn facts(&self) -> ChannelFacts<'_> {
        ChannelFacts {
            name: &self.name,
            kind: &self.kind,
            labels: &self.labels,
        }
    }
}

/// Every public and private channel, by name.
pub async fn named(db: &PgPool) -> Result<Vec<Named>, sqlx::Error> {
    // `name!`: public and private channels always have a name.
    sqlx::query_as!(
        Named,
        r#"SELECT id, name AS "name!", kind,
                  labels AS "labels: sqlx::types::Json<BTreeMap<String, String>>"
           FROM channels WHERE kind IN ('public', 'private') ORDER BY name"#
    )
    .fetch_all(db)
    .await
}

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Channel> {
    Ok(see(state, caller, id).await?.channel)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChannel {
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub name: String,
    #[serde(default)]
    #[schema(format = "line", min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    #[serde(default)]
    #[schema(format = "text-or-empty", max_length = 1024)]
    pub purpose: String,
    #[schema(value_type = ChannelKindName)]
    pub kind: String,
}

/// The kind of channel `POST /api/v1/channels` makes.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum ChannelKindName {
    #[schema(rename = "public")]
    Public,
    #[schema(rename = "private")]
    Private,
}

impl Valid for CreateChannel {
    fn valid(&self) -> ApiResult<()> {
        if !valid_channel_name(&self.name) {
            return Err(ApiError::invalid(
                "name",
                "a channel name is 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit",
            ));
        }
        if let Some(name) = &self.display_name {
            input::line(name, input::DISPLAY_NAME_MAX).map_err(input::at("displayName"))?;
        }
        input::text(&self.purpose, input::PURPOSE_MAX, false).map_err(input::at("purpose"))
    }
}

pub fn valid_channel_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// Creates a public or private channel; its creator is its first admin.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: CreateChannel,
) -> ApiResult<Channel> {
    if caller.role == Role::Guest {
        return Err(ApiError::forbidden("guests cannot create channels"));
    }
    let kind = match ChannelKind::parse(&request.kind) {
        Some(kind @ (ChannelKind::Public | ChannelKind::Private)) => kind,
        _ => {
            return Err(ApiError::invalid(
                "kind",
                "kind must be public or private (direct and group conversations have their own endpoints)",
            ))
        }
    };
    // A policy gating this name must admit the creator, who would otherwise
    // make a channel they cannot see.
    let no_labels = BTreeMap::new();
    let verdict = state.policies().decide(
        &caller.subject(),
        &ChannelFacts {
            name: &request.name,
            kind: kind.as_str(),
            labels: &no_labels,
        },
    );
    if !verdict.allowed() {
        return Err(ApiError::forbidden(format!(
            "you may not create channel {:?}: {}",
            request.name,
            verdict.reasons()
        )));
    }
    let id = new_id();
    let mut tx = state.db.begin().await?;
    let inserted = db::channels::insert_named(
        &mut *tx,
        &id,
        kind.as_str(),
        &request.name,
        request.display_name.as_deref().unwrap_or(&request.name),
        &request.purpose,
        &caller.user_id,
    )
    .await?;
    if !inserted {
        return Err(ApiError::conflict(
            "name",
            "a channel with that name exists",
        ));
    }
    add_member(&mut tx, &state.config(), &id, &caller.user_id, "admin").await?;
    db::commit(tx).await?;
    Ok(see(state, caller, &id)
        .await
        .map_err(ApiError::after_commit)?
        .channel)
}

pub(crate) async fn add_member(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    config: &RuntimeConfig,
    channel_id: &str,
    user_id: &str,
    role: &str,
) -> Result<bool, db::Error> {
    let added = db::members::insert(&mut **tx, channel_id, user_id, role).await?;
    if added {
        let change = Change::MemberAdded(MemberChange {
            channel_id: channel_id.to_string(),
            user_id: user_id.to_string(),
            role: Some(role.to_string()),
            reason: None,
        });
        events::record(tx, &change).await?;
        federation::publish_membership(tx, config, channel_id, user_id, true).await?;
    }
    Ok(added)
}

/// An active user as access policies see them.
pub struct Target {
    pub role: Role,
    attributes: serde_json::Map<String, serde_json::Value>,
    guest_policy: Option<String>,
}

impl Target {
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            role: self.role,
            attributes: &self.attributes,
            guest_policy: self.guest_policy.as_deref(),
        }
    }
}

pub async fn subject_of(db: &PgPool, user_id: &str) -> ApiResult<Option<Target>> {
    type Row = (
        String,
        sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
        Option<String>,
    );
    // Not `query!`: the condition is `active_user!()`, one definition of a
    // user who may act, joined with `concat!`, which `query!` does not take.
    let row: Option<Row> = sqlx::query_as(concat!(
        "SELECT u.role, u.attributes, u.guest_policy FROM users u WHERE u.id = $1 AND ",
        super::db::users::active_user!()
    ))
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(role, attributes, guest_policy)| Target {
        role: Role::parse(&role).unwrap_or(Role::Guest),
        attributes: attributes.0,
        guest_policy,
    }))
}

/// Role of an active user, or None if there is no such user.
async fn user_role(db: &PgPool, user_id: &str) -> ApiResult<Option<Role>> {
    let role = sqlx::query_scalar!(
        "SELECT role FROM users WHERE id = $1 AND deactivated_at IS NULL",
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(role.and_then(|r| Role::parse(&r)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectRequest {
    #[schema(pattern = "^[0-9A-HJKMNP-TV-Z]{26}$")]
    pub user_id: String,
}

impl Valid for DirectRequest {
    fn valid(&self) -> ApiResult<()> {
        input::id(&self.user_id).map_err(input::at("userId"))
    }
}

/// The direct conversation between the caller and one other user, created
/// on first use; with oneself, one's notes (a conversation of one member).
pub async fn direct(
    state: &AppState,
    caller: &Caller,
    request: DirectRequest,
) -> ApiResult<Channel> {
    let other = subject_of(&state.db, &request.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    // A conversation with oneself is one's notes: one member, no one else
    // to ask leave of.
    let with_self = request.user_id == caller.user_id;
    let caller_subject = caller.subject();
    let pair_subjects = [caller_subject, other.subject()];
    if !with_self && pair_subjects.iter().any(|s| s.role == Role::Guest) {
        // A guest talks directly only if their GuestPolicy allows it, and
        // only with people they already share a channel with.
        let policies = state.policies();
        let allowed = pair_subjects.iter().all(|s| {
            s.role != Role::Guest
                || s.guest_policy
                    .and_then(|p| policies.guests.get(p))
                    .is_some_and(|rules| rules.direct_messages)
        });
        if !allowed {
            return Err(ApiError::forbidden(
                "direct messages with guests are not allowed (the guest's policy does not allow them)",
            ));
        }
        let share = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM channel_members a
                            JOIN channel_members b ON b.channel_id = a.channel_id
                            JOIN channels c ON c.id = a.channel_id
                            WHERE a.user_id = $1 AND b.user_id = $2 AND c.kind IN ('public', 'private')) AS "share!""#,
            caller.user_id,
            request.user_id
        )
        .fetch_one(&state.db)
        .await?;
        if !share {
            return Err(ApiError::forbidden(
                "a guest can message directly only people they share a channel with",
            ));
        }
    }
    let mut pair = [caller.user_id.clone(), request.user_id.clone()];
    pair.sort();
    let key = pair.join(":");
    let mut tx = state.db.begin().await?;
    let existing = sqlx::query_scalar!("SELECT id FROM channels WHERE direct_key = $1", key)
        .fetch_optional(&mut *tx)
        .await?;
    let id = match existing {
        Some(id) => id,
        None => {
            let id = new_id();
            let inserted =
                db::channels::insert_direct(&mut *tx, &id, &key, &caller.user_id).await?;
            if !inserted {
                // Created concurrently by the other side: use theirs.
                tx.rollback().await?;
                let id = sqlx::query_scalar!("SELECT id FROM channels WHERE direct_key = $1", key)
                    .fetch_one(&state.db)
                    .await?;
                return Ok(see(state, caller, &id).await?.channel);
            }
            let members = if with_self { &pair[..1] } else { &pair[..] };
            for user in members {
                add_member(&mut tx, &state.config(), &id, user, "member").await?;
            }
            id
        }
    };
    db::commit(tx).await?;
    Ok(see(state, caller, &id)
        .await
        .map_err(ApiError::after_commit)?
        .channel)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRequest {
    /// The others: 2-7 people.
    #[schema(min_items = 2, max_items = 7, inline, value_type = Vec<input::Id>)]
    pub user_ids: Vec<String>,
}

impl Valid for GroupRequest {
    fn valid(&self) -> ApiResult<()> {
        if !(2..=7).contains(&self.user_ids.len()) {
            return Err(ApiError::invalid(
                "userIds",
                "a group conversation has 3 to 8 people, you included",
            ));
        }
        self.user_ids
            .iter()
            .try_for_each(|id| input::id(id).map_err(input::at("userIds")))
    }
}

/// A group conversation of the caller and 2-7 others.
pub async fn group(state: &AppState, caller: &Caller, request: GroupRequest) -> ApiResult<Channel> {
    let mut members: Vec<String> = request.user_ids.clone();
    members.push(caller.user_id.clone());
    members.sort();
    members.dedup();
    if !(3..=8).contains(&members.len()) {
        return Err(ApiError::invalid(
            "userIds",
            "a group conversation has 3 to 8 people, you included",
        ));
    }
    if caller.role == Role::Guest {
        return Err(ApiError::forbidden(
            "guests cannot start group conversations",
        ));
    }
    for user in &members {
        match user_role(&state.db, user).await? {
            None => return Err(ApiError::not_found("user")),
            Some(Role::Guest) => {
                return Err(ApiError::forbidden(
                    "group conversations with guests are not allowed",
                ))
            }
            Some(_) => {}
        }
    }
    let id = new_id();
    let mut tx = state.db.begin().await?;
    db::channels::insert_group(&mut *tx, &id, &caller.user_id).await?;
    for user in &members {
        add_member(&mut tx, &state.config(), &id, user, "member").await?;
    }
    db::commit(tx).await?;
    Ok(see(state, caller, &id)
        .await
        .map_err(ApiError::after_commit)?
        .channel)
}

pub async fn join(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Channel> {
    let seen = see(state, caller, id).await?;
    if seen.channel.member {
        return Ok(seen.channel);
    }
    if !seen.access.join {
        return Err(ApiError::forbidden(
            "this channel cannot be joined; ask a member to add you",
        ));
    }
    let mut tx = state.db.begin().await?;
    add_member(&mut tx, &state.config(), id, &caller.user_id, "member").await?;
    db::commit(tx).await?;
    Ok(see(state, caller, id)
        .await
        .map_err(ApiError::after_commit)?
        .channel)
}

pub async fn leave(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let seen = see(state, caller, id).await?;
    if seen.channel.kind == "direct" {
        return Err(ApiError::forbidden("a direct conversation cannot be left"));
    }
    remove_member(state, id, &caller.user_id, None).await?;
    Ok(())
}

/// Removes a member; the channel's members and the removed user hear of it
/// (which ends the removed user's live subscription to the channel). With
/// `audit`, the removal is recorded with it; its reason goes in the event.
pub async fn remove_member(
    state: &AppState,
    channel_id: &str,
    user_id: &str,
    audit: Option<audit::Entry<'_>>,
) -> Result<bool, db::Error> {
    let mut tx = state.db.begin().await?;
    let reason = audit.as_ref().map(|a| a.reason.as_str());
    let removed = remove_in(&mut tx, &state.config(), channel_id, user_id, reason).await?;
    if let (true, Some(entry)) = (removed, audit) {
        audit::record(&mut *tx, entry).await?;
    }
    db::commit(tx).await?;
    Ok(removed)
}

/// [`remove_member`] inside `tx`; whether there was a membership to remove.
pub async fn remove_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    config: &RuntimeConfig,
    channel_id: &str,
    user_id: &str,
    reason: Option<&str>,
) -> Result<bool, db::Error> {
    let removed = db::members::delete(&mut **tx, channel_id, user_id).await?;
    if removed {
        let change = Change::MemberRemoved(MemberChange {
            channel_id: channel_id.to_string(),
            user_id: user_id.to_string(),
            role: None,
            reason: reason.map(String::from),
        });
        events::record(tx, &change).await?;
        federation::publish_membership(tx, config, channel_id, user_id, false).await?;
    }
    Ok(removed)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMember {
    #[schema(pattern = "^[0-9A-HJKMNP-TV-Z]{26}$")]
    pub user_id: String,
    #[serde(default)]
    pub admin: bool,
}

impl Valid for AddMember {
    fn valid(&self) -> ApiResult<()> {
        input::id(&self.user_id).map_err(input::at("userId"))
    }
}

/// Adds a member. In a public channel any member may add people; in a private
/// one, channel admins and system admins.
/// Who is in a channel, for those who may read it. Partners' users carry
/// their origin and organisation, and guests are marked as guests
/// wherever they come from.
pub async fn members(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Vec<auth::Member>> {
    see(state, caller, id).await?;
    auth::members(&state.db, id).await
}

pub async fn add(state: &AppState, caller: &Caller, id: &str, request: AddMember) -> ApiResult<()> {
    let seen = see(state, caller, id).await?;
    let may_add = match seen.channel.kind.as_str() {
        "public" => seen.access.post || seen.access.manage,
        "private" => seen.access.manage,
        _ => false,
    };
    if !may_add || (request.admin && !seen.access.manage) || seen.channel.archived_at.is_some() {
        return Err(ApiError::forbidden(
            "you may not add members to this channel",
        ));
    }
    let target = subject_of(&state.db, &request.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let verdict = verdict(state, &target.subject(), &seen.channel);
    if !verdict.allowed() {
        audit::record(
            &state.db,
            audit::Entry {
                kind: kind::ACCESS_DENIED,
                actor_id: Some(&caller.user_id),
                user_id: Some(&request.user_id),
                channel_id: Some(id),
                policy: Some(&verdict.denied[0].policy),
                reason: verdict.reasons(),
                data: serde_json::json!({"attempt": "add member"}),
            },
        )
        .await?;
        return Err(ApiError::forbidden(format!(
            "this user may not be added to this channel: {}",
            verdict.reasons()
        )));
    }
    let mut tx = state.db.begin().await?;
    add_member(
        &mut tx,
        &state.config(),
        id,
        &request.user_id,
        if request.admin { "admin" } else { "member" },
    )
    .await?;
    db::commit(tx).await?;
    Ok(())
}

pub async fn kick(state: &AppState, caller: &Caller, id: &str, user_id: &str) -> ApiResult<()> {
    let seen = see(state, caller, id).await?;
    if !seen.access.manage {
        return Err(ApiError::forbidden(
            "only channel admins and system admins remove members",
        ));
    }
    if !remove_member(state, id, user_id, None).await? {
        return Err(ApiError::not_found("member"));
    }
    Ok(())
}

pub async fn archive(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Channel> {
    let seen = see(state, caller, id).await?;
    if !seen.access.manage {
        return Err(ApiError::forbidden(
            "only channel admins and system admins archive a channel",
        ));
    }
    let mut tx = state.db.begin().await?;
    if db::channels::archive(&mut *tx, id).await? {
        let change = Change::ChannelArchived(ChannelRef {
            channel_id: id.to_string(),
        });
        events::record(&mut tx, &change).await?;
    }
    db::commit(tx).await?;
    Ok(see(state, caller, id)
        .await
        .map_err(ApiError::after_commit)?
        .channel)
}

/// What `PATCH /api/v1/channels/{id}` changes; absent fields stay.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateChannel {
    /// A new name (system admins only: access policies select channels by name).
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(format = "line", min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    #[serde(default)]
    #[schema(format = "text-or-empty", max_length = 1024)]
    pub purpose: Option<String>,
    #[serde(default)]
    #[schema(format = "text-or-empty", max_length = 1024)]
    pub header: Option<String>,
}

impl Valid for UpdateChannel {
    fn valid(&self) -> ApiResult<()> {
        if let Some(name) = &self.name {
            if !valid_channel_name(name) {
                return Err(ApiError::invalid(
                    "name",
                    "a channel name is 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit",
                ));
            }
        }
        if let Some(name) = &self.display_name {
            input::line(name, input::DISPLAY_NAME_MAX).map_err(input::at("displayName"))?;
        }
        if let Some(purpose) = &self.purpose {
            input::text(purpose, input::PURPOSE_MAX, false).map_err(input::at("purpose"))?;
        }
        if let Some(header) = &self.header {
            input::text(header, input::PURPOSE_MAX, false).map_err(input::at("header"))?;
        }
        if self.name.is_none()
            && self.display_name.is_none()
            && self.purpose.is_none()
            && self.header.is_none()
        {
            return Err(ApiError::invalid(
                "body",
                "change at least one of name, displayName, purpose, header",
            ));
        }
        Ok(())
    }
}

/// Renames a channel or changes its purpose or header: channel admins and
/// system admins for a named channel (renaming it: system admins, as
/// access policies select channels by name; never one shared with a
/// partner, whose workspace knows it by that name); any member for the
/// header and purpose of a direct or group conversation, which has no name.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    request: UpdateChannel,
) -> ApiResult<Channel> {
    let seen = see(state, caller, id).await?;
    let channel = &seen.channel;
    if channel.archived_at.is_some() {
        return Err(ApiError::forbidden("this channel is archived"));
    }
    let named = channel.name.is_some();
    if !named && (request.name.is_some() || request.display_name.is_some()) {
        return Err(ApiError::conflict(
            "name",
            "a direct or group conversation has no name; change its header or purpose",
        ));
    }
    let allowed = if named {
        seen.access.manage
    } else {
        seen.access.post
    };
    if !allowed {
        return Err(ApiError::forbidden(
            "only channel admins and system admins change a channel",
        ));
    }
    let renamed = request
        .name
        .as_deref()
        .filter(|new| Some(*new) != channel.name.as_deref());
    if let (Some(_), Some(old)) = (renamed, channel.name.as_deref()) {
        if caller.role != Role::SystemAdmin {
            return Err(ApiError::forbidden(
                "only system admins rename a channel: access policies select channels by name",
            ));
        }
        let shared = state
            .config()
            .federation
            .partners
            .iter()
            .any(|p| p.channels.iter().any(|c| c.name.eq_ignore_ascii_case(old)));
        if shared {
            return Err(ApiError::conflict(
                "name",
                "this channel is shared with a partner, whose workspace knows it by its name; change the PartnerConnection first",
            ));
        }
    }
    let description = db::channels::Description {
        name: renamed.or(channel.name.as_deref()),
        display_name: request
            .display_name
            .as_deref()
            .unwrap_or(&channel.display_name),
        purpose: request.purpose.as_deref().unwrap_or(&channel.purpose),
        header: request.header.as_deref().unwrap_or(&channel.header),
    };
    let change = Change::ChannelUpdated(events::ChannelDescription {
        channel_id: id.to_string(),
        name: description.name.map(String::from),
        display_name: description.display_name.to_string(),
        purpose: description.purpose.to_string(),
        header: description.header.to_string(),
    });
    let before = serde_json::json!({
        "name": channel.name, "displayName": channel.display_name,
        "purpose": channel.purpose, "header": channel.header,
    });
    let mut tx = state.db.begin().await?;
    if !db::channels::describe(&mut *tx, id, description).await? {
        return Err(ApiError::conflict("name", "a channel of that name exists"));
    }
    audit::record(
        &mut *tx,
        audit::Entry {
            kind: audit::kind::CHANNEL_UPDATED,
            actor_id: Some(&caller.user_id),
            channel_id: Some(id),
            reason: "the channel's name, purpose or header changed".into(),
            data: serde_json::json!({"before": before, "after": serde_json::to_value(&change).expect("events serialize")["data"]}),
            ..Default::default()
        },
    )
    .await?;
    events::record(&mut tx, &change).await?;
    db::commit(tx).await?;
    if renamed.is_some() {
        // Policies select channels by name: who may be in it may have changed.
        super::authz::sweep::channel(state, id, Some(&caller.user_id))
            .await
            .map_err(ApiError::after_commit)?;
    }
    Ok(see(state, caller, id)
        .await
        .map_err(ApiError::after_commit)?
        .channel)
}

#[cfg(test)]
mod tests {
    use super::valid_channel_name;

    #[test]
    fn channel_names_are_slugs() {
        assert!(valid_channel_name("joint-ops"));
        assert!(valid_channel_name("intel_2"));
        for bad in ["", "Joint", "-ops", "a b", &"x".repeat(65)] {
            assert!(!valid_channel_name(bad), "{bad}");
        }
    }
}
