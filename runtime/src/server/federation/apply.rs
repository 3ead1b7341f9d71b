//! Applying one event from a partner: checked against what is shared with
//! that partner, then made to take effect exactly once.
//!
//! Refusals are decided before anything is written: an event that claims
//! another origin (unless the partner may relay), touches a channel not
//! shared with the partner, writes into a read-only share, speaks for a
//! local user, changes a post written elsewhere, or exceeds a limit.

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

/// Creates or refreshes a partner's user; `Err` if the id is a local user's.
async fn remote_user(
    tx: &mut Transaction<'_, Postgres>,
    partner: &PartnerConfig,
    profile: &proto::Profile,
) -> Result<Result<(), String>, db::Error> {
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

/// Applies `event` from `partner` in `tx`: checked, deduplicated, written,
/// announced to local clients, relayed if the partner may relay, audited if
/// refused.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    partner: &PartnerConfig,
    event: &proto::Event,
) -> Result<Outcome, db::Error> {
    let outcome = match check(config, partner, event) {
        Err(reason) => Outcome::Rejected(reason),
        Ok((share, author, op)) => write(tx, config, partner, event, share, author, op).await?,
    };
    if let Outcome::Rejected(reason) = &outcome {
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
    Ok(outcome)
}

async fn write(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    partner: &PartnerConfig,
    event: &proto::Event,
    share: &SharedChannelConfig,
    author: &proto::Profile,
    op: &Op,
) -> Result<Outcome, db::Error> {
    if !db::federation::first_application(&mut **tx, &event.origin, &event.id).await? {
        return Ok(Outcome::Duplicate);
    }
    if let Err(reason) = remote_user(tx, partner, author).await? {
        return Ok(Outcome::Rejected(reason));
    }
    let channel_id = super::shared_channel(tx, partner, &share.name).await?;
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
            channels::add_member(tx, config, &channel_id, &author.id, "member").await?;
            if super::files::taken(tx, &p.files).await? {
                return Ok(Outcome::Rejected("a file id is already taken".into()));
            }
            let new = posts::NewPost {
                id: &p.post_id,
                channel_id: &channel_id,
                author_id: &author.id,
                reply_to: (!p.root_id.is_empty()).then_some(p.root_id.as_str()),
                message: &p.message,
                files: posts::Attached::FromPartner(&p.files),
                by,
            };
            if let Err(error) = posts::create(tx, config, new).await {
                return refused(error);
            }
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
            if let Err(reason) = remote_user(tx, partner, member).await? {
                return Ok(Outcome::Rejected(reason));
            }
            if matches!(op, Op::MemberJoined(_)) {
                channels::add_member(tx, config, &channel_id, &member.id, "member").await?;
            } else {
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
    if partner.allow_relay {
        super::enqueue(tx, config, &share.name, event, &[&partner.workspace_id]).await?;
    }
    Ok(Outcome::Applied)
}
