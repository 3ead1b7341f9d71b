//! Posts: the rules of messages, thread replies, edits with history,
//! deletes, reactions, pins and mentions, and the one write every source of
//! a post goes through ([`create`]). The HTTP handlers are in
//! [`super::api::posts`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use entente_crds::config::{PartnerConfig, RuntimeConfig};

pub mod writer;
use sqlx::{Postgres, Transaction};

pub use super::db::posts::Post;
use super::{
    db,
    events::{self, Change},
    federation::{self, proto, proto::event::Op},
};

/// Longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 16_383;
/// Most files one post carries.
pub const MAX_FILES: usize = 10;

/// What a message mentions: `@username`s and whether it says `@channel`/`@all`/`@here`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mentions {
    pub usernames: BTreeSet<String>,
    pub channel: bool,
}

pub fn parse_mentions(message: &str) -> Mentions {
    let mut mentions = Mentions::default();
    let bytes = message.as_bytes();
    for (i, _) in message.match_indices('@') {
        // A mention starts a word: not the middle of an email address.
        if i > 0
            && (bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'.'
                || bytes[i - 1] == b'_')
        {
            continue;
        }
        let name: String = message[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let name = name.trim_end_matches(['.', '-', '_']).to_ascii_lowercase();
        match name.as_str() {
            "" => {}
            "channel" | "all" | "here" => mentions.channel = true,
            _ => {
                mentions.usernames.insert(name);
            }
        }
    }
    mentions
}

/// A change to a post refused by the rules every source is held to.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The input breaks a rule; `field` names it as the API calls it.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] db::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(error: sqlx::Error) -> Self {
        WriteError::Db(error.into())
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> WriteError {
    WriteError::Invalid {
        field,
        message: message.into(),
    }
}

/// A message is not empty (nor only white space or invisible characters),
/// holds no control character but line breaks and tabs, and is at most
/// [`MAX_MESSAGE_CHARS`] characters, whoever wrote it.
pub fn check_message(message: &str) -> Result<(), WriteError> {
    super::input::text(message, MAX_MESSAGE_CHARS, true)
        .map_err(|problem| invalid("message", format!("message {problem}")))
}

/// Who makes a change, which decides its time and whether partners hear of it.
#[derive(Clone, Copy)]
pub enum By<'a> {
    /// A local user (through the API, or a call notice in their name):
    /// stamped now, and queued for every partner the channel is shared with.
    Local,
    /// A partner's user, applied from federation: stamped with its origin's
    /// time, and never sent back (relaying is federation's own).
    Partner {
        partner: &'a PartnerConfig,
        origin: &'a str,
        at: DateTime<Utc>,
    },
}

impl By<'_> {
    /// When the change was made at its origin; `None` for now.
    fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            By::Local => None,
            By::Partner { at, .. } => Some(*at),
        }
    }
}

/// Files a new post carries.
#[derive(Clone, Copy)]
pub enum Attached<'a> {
    /// Files the author uploaded to the channel and has not attached yet.
    Uploads(&'a [String]),
    /// A partner's files, named by reference; their bytes follow.
    FromPartner(&'a [proto::FileRef]),
}

/// A post to write.
#[derive(Clone, Copy)]
pub struct NewPost<'a> {
    pub id: &'a str,
    pub channel_id: &'a str,
    pub author_id: &'a str,
    /// The post replied to: the reply joins that post's thread.
    pub reply_to: Option<&'a str>,
    pub message: &'a str,
    pub files: Attached<'a>,
    pub by: By<'a>,
}

/// The one write of a new post, whatever its source — a local user, a
/// partner, a call notice (and bridges, bots and agents after them): the
/// same rules, mentions, read marker, files, live event and federation
/// outbox for all. Returns the post as written.
pub async fn create(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    new: NewPost<'_>,
) -> Result<Post, WriteError> {
    let mut written = create_many(tx, config, &[new]).await?;
    written.pop().expect("one result for one post")
}

/// [`create`] for several posts, in order, as if each were written alone —
/// but with the rows of all inserted together (one statement for the
/// posts, one for their events), which is what makes catching up with a
/// partner cheap. A post a rule refuses is refused alone (its own `Err`);
/// the outer `Err` (the database failed, or a post named files it may not
/// attach) means none of them may be committed.
pub async fn create_many(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    news: &[NewPost<'_>],
) -> Result<Vec<Result<Post, WriteError>>, WriteError> {
    let mut results = Vec::with_capacity(news.len());
    let mut start = 0;
    while start < news.len() {
        // A reply to a post of this batch is written after that post.
        let mut end = start + 1;
        while end < news.len()
            && !news[start..end]
                .iter()
                .any(|earlier| Some(earlier.id) == news[end].reply_to)
        {
            end += 1;
        }
        results.extend(write(tx, config, &news[start..end]).await?);
        start = end;
    }
    Ok(results)
}

/// The rules a post is held to before anything is written.
fn rules(new: &NewPost<'_>) -> Result<(), WriteError> {
    check_message(new.message)?;
    match new.files {
        Attached::Uploads(ids) if ids.len() > MAX_FILES => Err(invalid(
            "fileIds",
            format!("a post carries at most {MAX_FILES} files"),
        )),
        _ => Ok(()),
    }
}

/// Writes posts none of which replies to another of them.
async fn write(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    news: &[NewPost<'_>],
) -> Result<Vec<Result<Post, WriteError>>, WriteError> {
    let mut refused: Vec<Option<WriteError>> = news.iter().map(|new| rules(new).err()).collect();
    // A reply hangs off its thread's first post, in the same channel; a
    // local author replies only to a live post, while a partner's reply
    // stands even if the post was deleted here meanwhile.
    let replies: Vec<(&str, &str, bool)> = news
        .iter()
        .zip(&refused)
        .filter(|(_, refusal)| refusal.is_none())
        .filter_map(|(new, _)| {
            let partner = matches!(new.by, By::Partner { .. });
            Some((new.reply_to?, new.channel_id, partner))
        })
        .collect();
    let roots = db::posts::thread_roots(&mut **tx, &replies).await?;
    let mut root_ids: Vec<Option<String>> = vec![None; news.len()];
    for (i, new) in news.iter().enumerate() {
        let Some(parent) = new.reply_to.filter(|_| refused[i].is_none()) else {
            continue;
        };
        match roots.get(&(parent.to_string(), new.channel_id.to_string())) {
            Some(root) => root_ids[i] = Some(root.clone()),
            None => refused[i] = Some(invalid("rootId", "rootId must be a post in this channel")),
        }
    }
    let candidates: Vec<usize> = (0..news.len()).filter(|&i| refused[i].is_none()).collect();
    let rows: Vec<db::posts::NewPost> = candidates
        .iter()
        .map(|&i| db::posts::NewPost {
            id: news[i].id,
            channel_id: news[i].channel_id,
            user_id: news[i].author_id,
            root_id: root_ids[i].as_deref(),
            message: news[i].message,
            created_at: news[i].by.at(),
            origin: match news[i].by {
                By::Local => None,
                By::Partner { origin, .. } => Some(origin),
            },
        })
        .collect();
    let inserted = db::posts::insert(&mut **tx, &rows).await?;
    let mut posts: Vec<Option<Post>> = vec![None; news.len()];
    for (&i, post) in candidates.iter().zip(inserted) {
        match post {
            Some(post) => posts[i] = Some(post),
            None => {
                refused[i] = Some(invalid(
                    "id",
                    format!("post id {} is already taken", news[i].id),
                ))
            }
        }
    }
    for (new, post) in news.iter().zip(posts.iter_mut()) {
        let Some(post) = post else { continue };
        // Mentions count only for members of the channel, never the author.
        let mentions = parse_mentions(new.message);
        let usernames: Vec<String> = mentions.usernames.into_iter().collect();
        db::posts::insert_mentions(
            &mut **tx,
            new.id,
            new.channel_id,
            new.author_id,
            mentions.channel,
            &usernames,
        )
        .await?;
        if attach(tx, new).await? {
            // Files hang off the post now: read it back with them.
            *post = db::posts::load(&mut **tx, new.id).await?.ok_or_else(|| {
                invalid(
                    "id",
                    format!("post {} vanished while it was written", new.id),
                )
            })?;
        }
    }
    let written: Vec<Change> = posts
        .iter()
        .flatten()
        .cloned()
        .map(Change::Posted)
        .collect();
    events::record_many(tx, &written).await?;
    // Posts that ask an agent are queued with them, whoever wrote them.
    let new_posts: Vec<&Post> = posts.iter().flatten().collect();
    super::ai::agents::queue(tx, config, &new_posts).await?;
    // And translated for their readers, off the write's path.
    let ids = new_posts.iter().map(|p| p.id.clone()).collect();
    super::translate::queue(tx, config, ids).await?;
    // Posting marks the channel read up to one's own post. (A partner's
    // user never reads here: their read marker is not kept.)
    let read: Vec<(&str, &str, i64)> = news
        .iter()
        .zip(&posts)
        .filter_map(|(new, post)| match (post, new.by) {
            (Some(post), By::Local) => Some((new.channel_id, new.author_id, post.seq)),
            _ => None,
        })
        .collect();
    db::members::read_to(&mut **tx, &read).await?;
    for (new, post) in news.iter().zip(&posts) {
        let (Some(post), By::Local) = (post, new.by) else {
            continue;
        };
        let files = match new.files {
            Attached::Uploads(ids) if !ids.is_empty() => {
                federation::files::references(tx, new.id).await?
            }
            _ => Vec::new(),
        };
        let op = Op::PostCreated(proto::PostCreated {
            post_id: new.id.to_string(),
            root_id: post.root_id.clone().unwrap_or_default(),
            message: new.message.to_string(),
            files,
        });
        federation::publish(
            tx,
            config,
            new.channel_id,
            new.author_id,
            post.created_at,
            op,
        )
        .await?;
    }
    Ok(posts
        .into_iter()
        .zip(refused)
        .map(|(post, refusal)| match (post, refusal) {
            (Some(post), _) => Ok(post),
            (None, Some(refusal)) => Err(refusal),
            (None, None) => unreachable!("a post is either written or refused"),
        })
        .collect())
}

/// Attaches a new post's files; whether it has any. A local author's must
/// be uploads of theirs to the channel not attached yet.
async fn attach(tx: &mut Transaction<'_, Postgres>, new: &NewPost<'_>) -> Result<bool, WriteError> {
    match new.files {
        Attached::Uploads([]) | Attached::FromPartner([]) => Ok(false),
        Attached::Uploads(ids) => {
            let attached =
                db::files::attach(&mut **tx, new.id, ids, new.author_id, new.channel_id).await?;
            if attached as usize != ids.len() {
                return Err(invalid(
                    "fileIds",
                    "every file must be one you uploaded to this channel and not yet attached",
                ));
            }
            Ok(true)
        }
        Attached::FromPartner(refs) => {
            let By::Partner {
                partner, origin, ..
            } = new.by
            else {
                unreachable!("only a partner's post carries a partner's files")
            };
            federation::files::receive(
                tx,
                partner,
                origin,
                new.channel_id,
                new.author_id,
                new.id,
                refs,
            )
            .await?;
            Ok(true)
        }
    }
}

/// Replaces a live post's text, keeping the earlier one in its history. A
/// local edit always lands; a partner's lands only if it is the latest by
/// (time, origin) on every side. `None` if nothing changed.
pub async fn edit(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    post_id: &str,
    message: &str,
    editor_id: &str,
    by: By<'_>,
) -> Result<Option<Post>, WriteError> {
    check_message(message)?;
    let changed = match by {
        By::Local => db::posts::edit_now(tx, post_id, message, editor_id).await?,
        By::Partner { origin, at, .. } => {
            db::posts::edit_at(
                &mut **tx,
                post_id,
                message,
                editor_id,
                at,
                origin,
                &config.workspace.id,
            )
            .await?
        }
    };
    if !changed {
        return Ok(None);
    }
    let post = announce(tx, Change::Edited, post_id).await?;
    // Its translations are of the old text: translated again.
    super::translate::requeue(tx, config, post_id).await?;
    if let By::Local = by {
        let op = Op::PostEdited(proto::PostEdited {
            post_id: post_id.to_string(),
            message: message.to_string(),
        });
        let at = post.edited_at.unwrap_or_else(Utc::now);
        federation::publish(tx, config, &post.channel_id, editor_id, at, op).await?;
    }
    Ok(Some(post))
}

/// Deletes a live post. Only the author's side speaks for a post: a
/// moderator's delete of someone else's post holds here and is not sent.
/// `None` if it was already deleted.
pub async fn delete(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    post_id: &str,
    deleter_id: &str,
    by: By<'_>,
) -> Result<Option<Post>, WriteError> {
    if !db::posts::delete(&mut **tx, post_id, by.at()).await? {
        return Ok(None);
    }
    let deleted = announce(tx, Change::Deleted, post_id).await?;
    db::translations::forget(&mut **tx, post_id).await?;
    if matches!(by, By::Local) && deleted.user_id == deleter_id {
        let op = Op::PostDeleted(proto::PostDeleted {
            post_id: post_id.to_string(),
        });
        let at = deleted.deleted_at.unwrap_or_else(Utc::now);
        federation::publish(tx, config, &deleted.channel_id, deleter_id, at, op).await?;
    }
    Ok(Some(deleted))
}

/// Adds (`add`) or removes one user's reaction; `None` if nothing changed.
pub async fn react(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    post_id: &str,
    user_id: &str,
    emoji: &str,
    add: bool,
    by: By<'_>,
) -> Result<Option<Post>, WriteError> {
    check_emoji(emoji)?;
    if !db::posts::set_reaction(&mut **tx, post_id, user_id, emoji, add).await? {
        return Ok(None);
    }
    let change = if add {
        Change::ReactionAdded
    } else {
        Change::ReactionRemoved
    };
    let post = announce(tx, change, post_id).await?;
    if let By::Local = by {
        let reaction = proto::Reaction {
            post_id: post_id.to_string(),
            emoji: emoji.to_string(),
        };
        let op = if add {
            Op::ReactionAdded(reaction)
        } else {
            Op::ReactionRemoved(reaction)
        };
        federation::publish(tx, config, &post.channel_id, user_id, Utc::now(), op).await?;
    }
    Ok(Some(post))
}

pub fn check_emoji(emoji: &str) -> Result<(), WriteError> {
    let ok = (1..=64).contains(&emoji.len())
        && emoji
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "emoji",
            "an emoji is its short name, such as thumbsup or +1",
        ))
    }
}

/// Pins or unpins a post (clients hear it as an edit).
pub async fn pin(
    tx: &mut Transaction<'_, Postgres>,
    post_id: &str,
    pinned: bool,
) -> Result<Post, WriteError> {
    db::posts::set_pinned(&mut **tx, post_id, pinned).await?;
    announce(tx, Change::Edited, post_id).await
}

/// Records `change` for `post_id` (the post as it now is) in `tx`.
pub(crate) async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    change: fn(Post) -> Change,
    post_id: &str,
) -> Result<Post, WriteError> {
    let post = db::posts::load(&mut **tx, post_id).await?.ok_or_else(|| {
        invalid(
            "id",
            format!("post {post_id} vanished while it was written"),
        )
    })?;
    events::record(tx, &change(post.clone())).await?;
    Ok(post)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(m: &Mentions) -> Vec<&str> {
        m.usernames.iter().map(String::as_str).collect()
    }

    #[test]
    fn mentions_are_words_starting_with_at() {
        let m = parse_mentions("@alice and @Bob.Smith, see @channel. mail j@example.org");
        assert_eq!(names(&m), ["alice", "bob.smith"]);
        assert!(m.channel);
        let m = parse_mentions("ping @carol.");
        assert_eq!(names(&m), ["carol"]);
        assert!(!m.channel);
        assert_eq!(parse_mentions("no one @ all"), Mentions::default());
        assert!(parse_mentions("@here").channel);
    }

    #[test]
    fn messages_are_bounded() {
        assert!(check_message("hello").is_ok());
        assert!(matches!(
            check_message("   "),
            Err(WriteError::Invalid {
                field: "message",
                ..
            })
        ));
        assert!(check_message(&"x".repeat(MAX_MESSAGE_CHARS + 1)).is_err());
    }
}
