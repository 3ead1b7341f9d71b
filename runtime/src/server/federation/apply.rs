//! Applying one event from a partner: checked against what is shared with
//! that partner, then made to take effect exactly once.
//!
//! Refusals are decided before anything is written: an event that claims
//! another origin (unless the partner may relay), touches a channel not
//! shared with the partner, writes into a read-only share, speaks for a
//! local user, changes a post written elsewhere, or exceeds a limit.

use std::collections::{HashMap, HashSet};

use entente_crds::config::{PartnerConfig, RuntimeConfig, SharedChannelConfig};
use sqlx::{Postgres, Transaction};

use super::proto::{self, event::Op};
use crate::server::{audit, auth::valid_username, channels, db, posts};

/// What became of one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Already applied (it came again, or by another path).
    Duplicate,
    /// Refused; the reason is audited.
    Rejected(String),
}

fn valid_id(id: &str) -> bool {
    ulid::Ulid::from_string(id).is_ok()
}

/// Checks `event` and returns the share it writes into and its author.
pub fn check<'e, 'p>(
    config: &RuntimeConfig,
    partner: &'p PartnerConfig,
    event: &'e proto::Event,
) -> Result<(&'p SharedChannelConfig, &'e proto::Profile, &'e Op), String> {
    if event.origin == config.workspace.id {
        return Err("the event claims to come from this workspace".into());
    }
    if event.origin != partner.workspace_id && !partner.allow_relay {
        return Err(format!(
            "the event claims origin {:?}, but the partner is {:?} and may not relay",
            event.origin, partner.workspace_id
        ));
    }
    if !valid_id(&event.id) {
        return Err("the event id is not a ULID".into());
    }
    let author = event.author.as_ref().ok_or("the event names no author")?;
    if author.origin != event.origin || !valid_id(&author.id) || !valid_username(&author.username) {
        return Err(format!(
            "the author {:?} is not a valid user of origin {:?}",
            author.username, event.origin
        ));
    }
    if author.display_name.chars().count() > 128 {
        return Err("the author's display name is over 128 characters".into());
    }
    let share = partner
        .channels
        .iter()
        .find(|c| c.remote_name.eq_ignore_ascii_case(&event.channel))
        .ok_or_else(|| {
            format!(
                "channel {:?} is not shared with {:?}",
                event.channel, partner.workspace_id
            )
        })?;
    let op = event.op.as_ref().ok_or("the event carries no change")?;
    let read_only = || {
        format!(
            "channel {:?} is shared read-only with {:?}",
            share.name, partner.workspace_id
        )
    };
    match op {
        Op::PostCreated(p) => {
            if !share.post {
                return Err(read_only());
            }
            check_message(&p.message)?;
            if !valid_id(&p.post_id) || !(p.root_id.is_empty() || valid_id(&p.root_id)) {
                return Err("a post id is not a ULID".into());
            }
            super::files::check(partner, share, &p.files)?;
        }
        Op::PostEdited(p) => {
            if !share.post {
                return Err(read_only());
            }
            check_message(&p.message)?;
        }
        Op::PostDeleted(_) => {
            if !share.post {
                return Err(read_only());
            }
        }
        Op::ReactionAdded(r) | Op::ReactionRemoved(r) => {
            if !share.react {
                return Err(format!(
                    "reactions are not allowed to {:?} in channel {:?}",
                    partner.workspace_id, share.name
                ));
            }
            if posts::check_emoji(&r.emoji).is_err() {
                return Err(format!("{:?} is not an emoji short name", r.emoji));
            }
        }
        Op::MemberJoined(m) | Op::MemberLeft(m) => {
            let member = m.member.as_ref().ok_or("the membership names no member")?;
            if member.origin != event.origin
                || !valid_id(&member.id)
                || !valid_username(&member.username)
            {
                return Err("the member is not a valid user of the origin".into());
            }
        }
    }
    Ok((share, author, op))
}

/// A message is held to the same rule as a local one.
fn check_message(message: &str) -> Result<(), String> {
    posts::check_message(message).map_err(|e| e.to_string())
}

/// What one transaction of events has already made sure of, so that each
/// is written once per batch instead of once per event: the shared
/// channels' ids, the partner's users as last refreshed, and whom it made a
/// member of which channel. Only valid inside that transaction.
#[derive(Default)]
struct Batch<'e> {
    /// Events applied for the first time by this batch and not written yet.
    fresh: HashSet<(String, String)>,
    channels: HashMap<String, String>,
    profiles: HashSet<proto::Profile>,
    members: HashSet<(String, String)>,
    /// New posts checked and waiting to be written together.
    posts: Vec<(Write<'e>, String, &'e proto::PostCreated)>,
}

/// One event to write, and where it is in its batch.
#[derive(Clone, Copy)]
struct Write<'e> {
    index: usize,
    event: &'e proto::Event,
    share: &'e SharedChannelConfig,
    author: &'e proto::Profile,
}

impl<'e> Batch<'e> {
    /// Writes the new posts waiting, and turns the outcome of any a rule of
    /// the post write refuses into its refusal; relays those written.
    async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        config: &RuntimeConfig,
        partner: &PartnerConfig,
        outcomes: &mut [Outcome],
    ) -> Result<(), db::Error> {
        if self.posts.is_empty() {
            return Ok(());
        }
        let waiting = std::mem::take(&mut self.posts);
        let news: Vec<posts::NewPost> = waiting
            .iter()
            .map(|(write, channel_id, post)| posts::NewPost {
                id: &post.post_id,
                channel_id,
                author_id: &write.author.id,
                reply_to: (!post.root_id.is_empty()).then_some(post.root_id.as_str()),
                message: &post.message,
                files: posts::Attached::FromPartner(&post.files),
                by: posts::By::Partner {
                    partner,
                    origin: &write.event.origin,
                    at: at(write.event),
                },
            })
            .collect();
        let written = match posts::create_many(tx, config, &news).await {
            Ok(written) => written,
            Err(posts::WriteError::Db(error)) => return Err(error),
            // A partner's post never names uploads: nothing else refuses a batch.
            Err(posts::WriteError::Invalid { message, .. }) => {
                return Err(db::Error::Query(sqlx::Error::Protocol(message)))
            }
        };
        for ((write, ..), result) in waiting.iter().zip(written) {
            match result {
                Ok(_) => write.relay(tx, config, partner).await?,
                Err(posts::WriteError::Invalid { message, .. }) => {
                    outcomes[write.index] = Outcome::Rejected(message)
                }
                Err(posts::WriteError::Db(error)) => return Err(error),
            }
        }
        Ok(())
    }

    async fn channel(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        partner: &PartnerConfig,
        share: &str,
    ) -> Result<String, db::Error> {
        if let Some(id) = self.channels.get(share) {
            return Ok(id.clone());
        }
        let id = super::shared_channel(tx, partner, share).await?;
        self.channels.insert(share.to_string(), id.clone());
        Ok(id)
    }

    async fn member(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        config: &RuntimeConfig,
        channel_id: &str,
        user_id: &str,
    ) -> Result<(), db::Error> {
        let key = (channel_id.to_string(), user_id.to_string());
        if !self.members.contains(&key) {
            channels::add_member(tx, config, channel_id, user_id, "member").await?;
            self.members.insert(key);
        }
        Ok(())
    }
}

/// Creates or refreshes a partner's user (once per batch for the same
/// profile); `Err` if the id is a local user's.
async fn remote_user(
    tx: &mut Transaction<'_, Postgres>,
    batch: &mut Batch<'_>,
    partner: &PartnerConfig,
    profile: &proto::Profile,
) -> Result<Result<(), String>, db::Error> {
    if batch.profiles.contains(profile) {
        return Ok(Ok(()));
    }
    let organisation = if profile.origin == partner.workspace_id {
        &partner.organisation
    } else {
        &profile.origin
    };
    let theirs = db::users::upsert_remote(
        &mut **tx,
        db::users::RemoteUser {
            id: &profile.id,
            username: &profile.username,
            display_name: &profile.display_name,
            origin: &profile.origin,
            organisation,
            guest: profile.guest,
        },
    )
    .await?;
    Ok(if theirs {
        batch.profiles.insert(profile.clone());
        Ok(())
    } else {
        Err(format!(
            "user id {} is not a user of {:?}",
            profile.id, profile.origin
        ))
    })
}

fn at(event: &proto::Event) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(event.at_micros).unwrap_or_else(chrono::Utc::now)
}

/// Applies `events` from `partner` in `tx`, in order: each checked,
/// deduplicated, written, announced to local clients, relayed if the
/// partner may relay, audited if refused. Returns what became of each.
///
/// Consecutive new posts are written together (one statement for their
/// rows, one for their events: [`posts::create_many`]); anything else first
/// writes the posts before it, so every change still lands in order.
pub async fn apply_all(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    partner: &PartnerConfig,
    events: &[proto::Event],
) -> Result<Vec<Outcome>, db::Error> {
    let checked: Vec<_> = events.iter().map(|e| check(config, partner, e)).collect();
    let keys: Vec<(&str, &str)> = events
        .iter()
        .zip(&checked)
        .filter(|(_, checked)| checked.is_ok())
        .map(|(e, _)| (e.origin.as_str(), e.id.as_str()))
        .collect();
    let mut batch = Batch {
        fresh: db::federation::first_applications(&mut **tx, &keys).await?,
        ..Batch::default()
    };
    let mut outcomes = Vec::with_capacity(events.len());
    for (i, (event, checked)) in events.iter().zip(checked).enumerate() {
        let outcome = match checked {
            Err(reason) => Outcome::Rejected(reason),
            // Applied already, or earlier in this batch.
            Ok(_)
                if !batch
                    .fresh
                    .remove(&(event.origin.clone(), event.id.clone())) =>
            {
                Outcome::Duplicate
            }
            Ok((share, author, op)) => {
                if !matches!(op, Op::PostCreated(_)) {
                    batch.flush(tx, config, partner, &mut outcomes).await?;
                }
                let write = Write {
                    index: i,
                    event,
                    share,
                    author,
                };
                let outcome =
                    apply_op(tx, &mut batch, config, partner, write, op, &mut outcomes).await?;
                if outcome == Outcome::Applied && !matches!(op, Op::PostCreated(_)) {
                    write.relay(tx, config, partner).await?;
                }
                outcome
            }
        };
        outcomes.push(outcome);
    }
    batch.flush(tx, config, partner, &mut outcomes).await?;
    for (event, outcome) in events.iter().zip(&outcomes) {
        let Outcome::Rejected(reason) = outcome else {
            continue;
        };
        audit::record(
            &mut **tx,
            audit::Entry {
                kind: super::REJECTED,
                reason: reason.clone(),
                data: serde_json::json!({
                    "partner": partner.workspace_id,
                    "origin": event.origin,
                    "eventId": event.id,
                    "channel": event.channel,
                }),
                ..Default::default()
            },
        )
        .await?;
    }
    Ok(outcomes)
}

impl<'e> Write<'e> {
    /// Sends the event on to the partners the channel is shared with, if
    /// `partner` may relay.
    async fn relay(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        config: &RuntimeConfig,
        partner: &PartnerConfig,
    ) -> Result<(), db::Error> {
        if partner.allow_relay {
            let (share, event) = (&self.share.name, self.event);
            super::enqueue(tx, config, share, event, &[&partner.workspace_id]).await?;
        }
        Ok(())
    }
}

/// Writes the checked, first-time event `op` — a new post only once
/// `batch` is flushed, and relayed then.
async fn apply_op<'e>(
    tx: &mut Transaction<'_, Postgres>,
    batch: &mut Batch<'e>,
    config: &RuntimeConfig,
    partner: &PartnerConfig,
    write: Write<'e>,
    op: &'e Op,
    outcomes: &mut [Outcome],
) -> Result<Outcome, db::Error> {
    let Write {
        event,
        share,
        author,
        ..
    } = write;
    if let Err(reason) = remote_user(tx, batch, partner, author).await? {
        return Ok(Outcome::Rejected(reason));
    }
    let channel_id = batch.channel(tx, partner, &share.name).await?;
    let by = posts::By::Partner {
        partner,
        origin: &event.origin,
        at: at(event),
    };
    // Only a post in this channel, written at the event's origin by its author, may be changed.
    let not_theirs = async |tx: &mut Transaction<'_, Postgres>, post_id: &str| {
        let theirs = sqlx::query_scalar!(
            "SELECT id FROM posts WHERE id = $1 AND channel_id = $2 AND origin = $3 AND user_id = $4",
            post_id,
            channel_id,
            event.origin,
            author.id
        )
        .fetch_optional(&mut **tx)
        .await?;
        Ok::<_, db::Error>(theirs.is_none().then(|| {
            Outcome::Rejected(format!(
                "post {post_id} is not a post of {:?} by {:?} in channel {:?}",
                event.origin, author.username, share.name
            ))
        }))
    };
    // A rule of the one post write refuses the event, as any other refusal.
    let refused = |error: posts::WriteError| match error {
        posts::WriteError::Invalid { message, .. } => Ok(Outcome::Rejected(message)),
        posts::WriteError::Db(e) => Err(e),
    };
    match op {
        Op::PostCreated(p) => {
            batch.member(tx, config, &channel_id, &author.id).await?;
            if !p.files.is_empty() {
                // Whether its file ids are taken includes the posts waiting.
                batch.flush(tx, config, partner, outcomes).await?;
                if super::files::taken(tx, &p.files).await? {
                    return Ok(Outcome::Rejected("a file id is already taken".into()));
                }
            }
            batch.posts.push((write, channel_id, p));
        }
        Op::PostEdited(p) => {
            if let Some(refusal) = not_theirs(tx, &p.post_id).await? {
                return Ok(refusal);
            }
            if let Err(error) =
                posts::edit(tx, config, &p.post_id, &p.message, &author.id, by).await
            {
                return refused(error);
            }
        }
        Op::PostDeleted(p) => {
            if let Some(refusal) = not_theirs(tx, &p.post_id).await? {
                return Ok(refusal);
            }
            if let Err(error) = posts::delete(tx, config, &p.post_id, &author.id, by).await {
                return refused(error);
            }
        }
        Op::ReactionAdded(r) | Op::ReactionRemoved(r) => {
            let in_channel = sqlx::query_scalar!(
                "SELECT id FROM posts WHERE id = $1 AND channel_id = $2 AND deleted_at IS NULL",
                r.post_id,
                channel_id
            )
            .fetch_optional(&mut **tx)
            .await?;
            if in_channel.is_none() {
                return Ok(Outcome::Rejected(format!(
                    "post {} is not in channel {:?}",
                    r.post_id, share.name
                )));
            }
            let add = matches!(op, Op::ReactionAdded(_));
            if let Err(error) =
                posts::react(tx, config, &r.post_id, &author.id, &r.emoji, add, by).await
            {
                return refused(error);
            }
        }
        Op::MemberJoined(m) | Op::MemberLeft(m) => {
            let member = m.member.as_ref().expect("checked");
            if let Err(reason) = remote_user(tx, batch, partner, member).await? {
                return Ok(Outcome::Rejected(reason));
            }
            if matches!(op, Op::MemberJoined(_)) {
                batch.member(tx, config, &channel_id, &member.id).await?;
            } else {
                batch
                    .members
                    .remove(&(channel_id.clone(), member.id.clone()));
                channels::remove_in(
                    tx,
                    config,
                    &channel_id,
                    &member.id,
                    Some("left at their workspace"),
                )
                .await?;
            }
        }
    }
    Ok(Outcome::Applied)
}
