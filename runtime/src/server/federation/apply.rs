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
use crate::server::{
    audit, channels,
    posts::{self, MAX_MESSAGE_CHARS},
};

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

fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
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

fn check_message(message: &str) -> Result<(), String> {
    if message.trim().is_empty() {
        return Err("a message is empty".into());
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(format!("a message is over {MAX_MESSAGE_CHARS} characters"));
    }
    Ok(())
}

/// Creates or refreshes a partner's user; `Err` if the id is a local user's.
async fn remote_user(
    tx: &mut Transaction<'_, Postgres>,
    partner: &PartnerConfig,
    profile: &proto::Profile,
) -> Result<Result<(), String>, sqlx::Error> {
    let organisation = if profile.origin == partner.workspace_id {
        partner.organisation.clone()
    } else {
        profile.origin.clone()
    };
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "INSERT INTO users (id, username, display_name, role, origin, organisation, attributes)
         VALUES ($1, $2 || '@' || $4, $3, 'remote', $4, $5, jsonb_build_object('guest', $6::boolean))
         ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name,
             organisation = EXCLUDED.organisation, attributes = EXCLUDED.attributes
             WHERE users.origin = EXCLUDED.origin
         RETURNING origin",
    )
    .bind(&profile.id)
    .bind(&profile.username)
    .bind(&profile.display_name)
    .bind(&profile.origin)
    .bind(&organisation)
    .bind(profile.guest)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some(_) => Ok(()),
        None => Err(format!(
            "user id {} is not a user of {:?}",
            profile.id, profile.origin
        )),
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
) -> Result<Outcome, sqlx::Error> {
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
) -> Result<Outcome, sqlx::Error> {
    let first = sqlx::query(
        "INSERT INTO federation_applied (origin, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&event.origin)
    .bind(&event.id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !first {
        return Ok(Outcome::Duplicate);
    }
    if let Err(reason) = remote_user(tx, partner, author).await? {
        return Ok(Outcome::Rejected(reason));
    }
    let channel_id = super::shared_channel(tx, partner, &share.name).await?;
    let when = at(event);
    // Only a post in this channel, written at the event's origin by its author, may be changed.
    let not_theirs = async |tx: &mut Transaction<'_, Postgres>, post_id: &str| {
        let theirs: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM posts WHERE id = $1 AND channel_id = $2 AND origin = $3 AND user_id = $4",
        )
        .bind(post_id)
        .bind(&channel_id)
        .bind(&event.origin)
        .bind(&author.id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok::<_, sqlx::Error>(theirs.is_none().then(|| {
            Outcome::Rejected(format!(
                "post {post_id} is not a post of {:?} by {:?} in channel {:?}",
                event.origin, author.username, share.name
            ))
        }))
    };
    match op {
        Op::PostCreated(p) => {
            channels::add_member(tx, config, &channel_id, &author.id, "member").await?;
            // A reply hangs off the thread's first post, if it is in this channel.
            let root: Option<(String, Option<String>)> = if p.root_id.is_empty() {
                None
            } else {
                sqlx::query_as("SELECT id, root_id FROM posts WHERE id = $1 AND channel_id = $2")
                    .bind(&p.root_id)
                    .bind(&channel_id)
                    .fetch_optional(&mut **tx)
                    .await?
            };
            if !p.root_id.is_empty() && root.is_none() {
                return Ok(Outcome::Rejected(format!(
                    "reply to post {} which is not in channel {:?}",
                    p.root_id, share.name
                )));
            }
            let root_id = root.map(|(id, parent)| parent.unwrap_or(id));
            if super::files::taken(tx, &p.files).await? {
                return Ok(Outcome::Rejected("a file id is already taken".into()));
            }
            let inserted = sqlx::query(
                "INSERT INTO posts (id, channel_id, user_id, root_id, message, created_at, origin)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&p.post_id)
            .bind(&channel_id)
            .bind(&author.id)
            .bind(&root_id)
            .bind(&p.message)
            .bind(when)
            .bind(&event.origin)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if !inserted {
                return Ok(Outcome::Rejected(format!(
                    "post id {} is already taken",
                    p.post_id
                )));
            }
            super::files::receive(
                tx,
                partner,
                &event.origin,
                &channel_id,
                &author.id,
                &p.post_id,
                &p.files,
            )
            .await?;
            posts::announce(tx, "posted", &p.post_id)
                .await
                .map_err(sql)?;
        }
        Op::PostEdited(p) => {
            if let Some(refused) = not_theirs(tx, &p.post_id).await? {
                return Ok(refused);
            }
            // Last writer wins by (time, origin); a deleted post stays deleted.
            let changed = sqlx::query(
                "WITH previous AS (
                     INSERT INTO post_edits (post_id, message, editor_id, replaced_at)
                     SELECT id, message, $3, $4 FROM posts
                     WHERE id = $1 AND deleted_at IS NULL
                       AND (COALESCE(edited_at, created_at), COALESCE(edit_origin, origin, $6)) < ($4, $5)
                     RETURNING post_id)
                 UPDATE posts SET message = $2, edited_at = $4, edit_origin = $5
                 WHERE id IN (SELECT post_id FROM previous)",
            )
            .bind(&p.post_id)
            .bind(&p.message)
            .bind(&author.id)
            .bind(when)
            .bind(&event.origin)
            .bind(&config.workspace.id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if changed {
                posts::announce(tx, "edited", &p.post_id)
                    .await
                    .map_err(sql)?;
            }
        }
        Op::PostDeleted(p) => {
            if let Some(refused) = not_theirs(tx, &p.post_id).await? {
                return Ok(refused);
            }
            let changed = sqlx::query(
                "UPDATE posts SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(&p.post_id)
            .bind(when)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if changed {
                posts::announce(tx, "deleted", &p.post_id)
                    .await
                    .map_err(sql)?;
            }
        }
        Op::ReactionAdded(r) | Op::ReactionRemoved(r) => {
            let in_channel: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM posts WHERE id = $1 AND channel_id = $2 AND deleted_at IS NULL",
            )
            .bind(&r.post_id)
            .bind(&channel_id)
            .fetch_optional(&mut **tx)
            .await?;
            if in_channel.is_none() {
                return Ok(Outcome::Rejected(format!(
                    "post {} is not in channel {:?}",
                    r.post_id, share.name
                )));
            }
            let add = matches!(op, Op::ReactionAdded(_));
            let statement = if add {
                "INSERT INTO reactions (post_id, user_id, emoji) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM reactions WHERE post_id = $1 AND user_id = $2 AND emoji = $3"
            };
            let changed = sqlx::query(statement)
                .bind(&r.post_id)
                .bind(&author.id)
                .bind(&r.emoji)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                == 1;
            if changed {
                let kind = if add {
                    "reaction_added"
                } else {
                    "reaction_removed"
                };
                posts::announce(tx, kind, &r.post_id).await.map_err(sql)?;
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

/// An API error from a helper shared with the REST handlers, as the
/// database error it can only be here.
fn sql(error: crate::server::error::ApiError) -> sqlx::Error {
    sqlx::Error::Protocol(error.message)
}
