//! Agents: bot users that answer when mentioned in a channel or messaged
//! directly.
//!
//! A post that asks an agent — from a local user, a partner's user, any
//! source — is queued by the one write of posts ([`queue`], in the same
//! transaction), so no question is lost to a crash or a restart. A server
//! claims it ([`run`]), checks that the asker may use the agent there,
//! gathers context the asker may read, streams the model's answer to the
//! channel as `streaming` events, and posts it as a reply in the thread
//! through the same write as every post. Every request is audited with who
//! asked, where, which model and the tokens spent.

use std::time::Duration;

use entente_crds::config::RuntimeConfig;
use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};

use super::{
    client::{Chat, ModelError, Reply, Usage},
    tools, Agent, Ai,
};
use crate::server::{
    auth::Caller,
    authz::{gate::see, roles::Role},
    db::{self, ai::Claimed, new_id},
    events::{self, Streaming},
    posts::{self, parse_mentions, Post},
    state::AppState,
};

/// Most text of the conversation put before the model, in characters.
pub const MAX_CONTEXT_CHARS: usize = 8_000;
/// Most of one post put before the model.
const MAX_POST_CHARS: usize = 2_000;
/// Posts before the question, outside a thread.
const CONTEXT_POSTS: i64 = 20;
/// Longest answer asked for, in tokens.
const MAX_ANSWER_TOKENS: u32 = 512;
/// Rounds of tool calls before the model must answer.
const TOOL_ROUNDS: usize = 3;
/// How often the answer so far is sent to the channel.
const STREAM_EVERY: Duration = Duration::from_millis(150);
/// Tries of one question before it is given up.
const MAX_ATTEMPTS: i32 = 3;

static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Something may have been queued: the worker looks now.
pub fn wake() {
    WAKE.notify_one();
}

/// Queues the questions among posts just written (in their transaction):
/// a post mentioning an agent, or in a direct conversation with one,
/// unless an agent wrote it.
pub(crate) async fn queue(
    tx: &mut Transaction<'_, Postgres>,
    config: &RuntimeConfig,
    written: &[&Post],
) -> Result<(), db::Error> {
    let Some(ai) = config.ai.as_ref().filter(|ai| !ai.agents.is_empty()) else {
        return Ok(());
    };
    if written.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = written.iter().map(|p| p.id.as_str()).collect();
    let channels: Vec<&str> = written.iter().map(|p| p.channel_id.as_str()).collect();
    let authors: Vec<&str> = written.iter().map(|p| p.user_id.as_str()).collect();
    // The agents each post's channel is a direct conversation with, and
    // the posts agents wrote.
    let rows = sqlx::query!(
        r#"SELECT w.id AS "id!",
                  (SELECT u.username FROM channels c
                     JOIN channel_members m ON m.channel_id = c.id
                     JOIN users u ON u.id = m.user_id AND u.role = 'bot'
                   WHERE c.id = w.channel_id AND c.kind = 'direct' LIMIT 1) AS direct_with,
                  EXISTS (SELECT 1 FROM users a WHERE a.id = w.author AND a.role = 'bot') AS "by_bot!"
           FROM UNNEST($1::text[], $2::text[], $3::text[]) AS w(id, channel_id, author)"#,
        &ids as &[&str],
        &channels as &[&str],
        &authors as &[&str],
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut questions = Vec::new();
    for (post, row) in written.iter().zip(&rows) {
        if row.by_bot {
            continue;
        }
        let mentioned = parse_mentions(&post.message).usernames;
        let asked = ai.agents.iter().map(|a| a.name.as_str()).find(|name| {
            mentioned.contains(&name.to_ascii_lowercase())
                || row
                    .direct_with
                    .as_deref()
                    .is_some_and(|d| d.eq_ignore_ascii_case(name))
        });
        if let Some(agent) = asked {
            questions.push(db::ai::Question {
                post_id: &post.id,
                agent,
                channel_id: &post.channel_id,
                asker_id: &post.user_id,
            });
        }
    }
    db::ai::queue(&mut **tx, &questions).await
}

/// Answers queued questions, a bounded number at once, until shutdown.
pub async fn run(state: AppState) {
    let Some(ai) = state.ai.clone() else { return };
    let mut shutdown = state.shutdown.clone();
    // A question a stopped server was answering is taken again after this.
    let stale = chrono::Duration::seconds(ai.config.timeout_seconds as i64 * 3 + 120);
    loop {
        loop {
            let Ok(permit) = ai.answering.clone().acquire_owned().await else {
                return;
            };
            match db::ai::claim(&state.db, stale).await {
                Ok(Some(question)) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        answer(&state, question).await;
                        drop(permit);
                        wake();
                    });
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the agents' questions; trying again");
                    break;
                }
            }
        }
        tokio::select! {
            _ = WAKE.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Who asked, with what they may see.
pub enum Asker {
    /// A local user, with their permissions now.
    Local(Caller),
    /// A partner's user: only ever the shared channel they asked in.
    Partner { user_id: String, origin: String },
}

impl Asker {
    pub fn user_id(&self) -> &str {
        match self {
            Asker::Local(caller) => &caller.user_id,
            Asker::Partner { user_id, .. } => user_id,
        }
    }
}

/// A user who may act, with their permissions; `None` if there is none.
async fn asker(state: &AppState, user_id: &str) -> Result<Option<(Asker, String)>, db::Error> {
    let row = sqlx::query!(
        "SELECT username, role, attributes, guest_policy, origin FROM users
         WHERE id = $1 AND deactivated_at IS NULL AND expired_at IS NULL
           AND (access_expires_at IS NULL OR access_expires_at > now())",
        user_id
    )
    .fetch_optional(&state.db)
    .await?;
    Ok(row.map(|row| {
        let asker = match row.origin {
            Some(origin) => Asker::Partner {
                user_id: user_id.to_string(),
                origin,
            },
            None => Asker::Local(Caller {
                user_id: user_id.to_string(),
                role: Role::parse(&row.role).unwrap_or(Role::Guest),
                token_id: String::new(),
                attributes: match row.attributes {
                    Value::Object(map) => map,
                    _ => Default::default(),
                },
                guest_policy: row.guest_policy,
            }),
        };
        (asker, row.username)
    }))
}

/// Where a question was asked, as far as the agent is concerned.
pub struct Place {
    pub channel_id: String,
    pub kind: String,
    pub name: Option<String>,
    pub display_name: String,
}

/// Whether `asker` may use `agent` in the channel, and the channel if so;
/// else why not, as they are told.
async fn admitted(
    state: &AppState,
    ai: &Ai,
    agent: &Agent,
    asker: &Asker,
    username: &str,
    channel_id: &str,
) -> Result<Result<Place, String>, db::Error> {
    let row = sqlx::query!(
        r#"SELECT c.kind, c.name, c.display_name,
                  EXISTS (SELECT 1 FROM channel_members m WHERE m.channel_id = c.id AND m.user_id = $2) AS "with_agent!"
           FROM channels c WHERE c.id = $1"#,
        channel_id,
        agent.user_id
    )
    .fetch_optional(&state.db)
    .await?;
    let Some(row) = row else {
        return Ok(Err("the channel no longer exists".into()));
    };
    let place = Place {
        channel_id: channel_id.to_string(),
        kind: row.kind,
        name: row.name,
        display_name: row.display_name,
    };
    let direct = place.kind == "direct" && row.with_agent;
    if !super::serves(&agent.config, username) {
        return Ok(Err(format!(
            "@{} answers only {}",
            agent.config.name,
            agent.config.users.join(", ")
        )));
    }
    if !direct && !agent.config.channels.is_empty() {
        let here = place.name.as_deref().unwrap_or_default();
        if !agent
            .config
            .channels
            .iter()
            .any(|c| c.eq_ignore_ascii_case(here))
        {
            return Ok(Err(format!(
                "@{} answers only in {}",
                agent.config.name,
                agent
                    .config
                    .channels
                    .iter()
                    .map(|c| format!("~{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    match asker {
        Asker::Local(caller) => match see(state, caller, channel_id).await {
            Ok(_) => Ok(Ok(place)),
            Err(_) => Ok(Err("you may no longer read this channel".into())),
        },
        Asker::Partner { origin, .. } => {
            if !ai.config.allow_partner_users {
                return Ok(Err(
                    "this workspace's agents answer only its own users".into()
                ));
            }
            let config = state.config();
            let shared = place.name.as_deref().is_some_and(|name| {
                config.federation.partners.iter().any(|p| {
                    &p.workspace_id == origin
                        && !p.suspended
                        && p.channels.iter().any(|c| c.name.eq_ignore_ascii_case(name))
                })
            });
            if shared {
                Ok(Ok(place))
            } else {
                Ok(Err("this channel is not shared with your workspace".into()))
            }
        }
    }
}

/// Names of users, by id.
pub async fn names(
    db: &sqlx::PgPool,
    posts: &[Post],
) -> Result<std::collections::HashMap<String, String>, db::Error> {
    let ids: Vec<String> = posts.iter().map(|p| p.user_id.clone()).collect();
    Ok(sqlx::query!(
        "SELECT id, username, display_name FROM users WHERE id = ANY($1)",
        &ids
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|u| {
        let name = if u.display_name.is_empty() {
            u.username.clone()
        } else {
            format!("{} (@{})", u.display_name, u.username)
        };
        (u.id, name)
    })
    .collect())
}

/// `posts` (oldest first) as chat messages, newest kept when they exceed
/// [`MAX_CONTEXT_CHARS`]: the agent's own as the assistant's, the others'
/// as the users', each named.
pub async fn transcript(
    db: &sqlx::PgPool,
    posts: &[Post],
    agent_id: Option<&str>,
) -> Result<Vec<Value>, db::Error> {
    let names = names(db, posts).await?;
    let mut messages = Vec::new();
    let mut room = MAX_CONTEXT_CHARS;
    for post in posts.iter().rev() {
        if post.message.is_empty() {
            continue;
        }
        let text: String = post.message.chars().take(MAX_POST_CHARS).collect();
        let message = if Some(post.user_id.as_str()) == agent_id {
            json!({"role": "assistant", "content": text})
        } else {
            let name = names
                .get(&post.user_id)
                .map(String::as_str)
                .unwrap_or("someone");
            json!({"role": "user", "content": format!("{name}: {text}")})
        };
        let size = message["content"].as_str().map_or(0, str::len);
        if size > room {
            break;
        }
        room -= size;
        messages.push(message);
    }
    messages.reverse();
    Ok(messages)
}

/// The conversation the question is asked in: its thread, or the posts
/// before it (and it) in the channel.
async fn context(state: &AppState, question: &Post) -> Result<Vec<Post>, db::Error> {
    match &question.root_id {
        Some(root) => db::posts::thread(&state.db, root).await,
        None => {
            let mut before = db::posts::page(
                &state.db,
                &question.channel_id,
                question.seq + 1,
                CONTEXT_POSTS,
            )
            .await?;
            before.reverse();
            Ok(before)
        }
    }
}

/// What happened to one question.
struct Outcome {
    answer_id: Option<String>,
    error: Option<String>,
    usage: Usage,
    reply: Option<Reply>,
    model: String,
}

async fn answer(state: &AppState, question: Claimed) {
    let Some(ai) = state.ai.clone() else { return };
    let outcome = match attempt(state, &ai, &question).await {
        Ok(outcome) => outcome,
        Err(error) => {
            // The database failed: the question stays claimed and is taken
            // again once stale, unless it was tried enough.
            tracing::warn!(%error, post = %question.post_id, "answering an agent question failed");
            if question.attempts < MAX_ATTEMPTS {
                return;
            }
            Outcome {
                answer_id: None,
                error: Some(format!("gave up after {MAX_ATTEMPTS} tries: {error}")),
                usage: Usage::default(),
                reply: None,
                model: String::new(),
            }
        }
    };
    // Counted before it is recorded: whoever reads the record sees the count.
    state.metrics.ai_request(
        &outcome.model,
        "agent",
        outcome.error.is_none(),
        outcome.usage,
        outcome.reply.as_ref(),
    );
    let finished = async {
        let mut tx = state.db.begin().await?;
        db::ai::finish(
            &mut *tx,
            &question.post_id,
            outcome.answer_id.as_deref(),
            outcome.error.as_deref(),
        )
        .await?;
        if !outcome.model.is_empty() {
            db::ai::spend(
                &mut *tx,
                db::ai::Spent {
                    user_id: &question.asker_id,
                    model: &outcome.model,
                    purpose: "agent",
                    failed: outcome.error.is_some(),
                    prompt_tokens: outcome.usage.prompt_tokens,
                    completion_tokens: outcome.usage.completion_tokens,
                },
            )
            .await?;
        }
        db::audit::record(
            &mut *tx,
            db::audit::Entry {
                kind: if outcome.error.is_none() {
                    "ai.agent_answered"
                } else {
                    "ai.agent_failed"
                },
                actor_id: Some(&question.asker_id),
                channel_id: Some(&question.channel_id),
                reason: outcome.error.clone().unwrap_or_default(),
                data: json!({
                    "agent": question.agent,
                    "model": outcome.model,
                    "postId": question.post_id,
                    "answerId": outcome.answer_id,
                    "promptTokens": outcome.usage.prompt_tokens,
                    "completionTokens": outcome.usage.completion_tokens,
                    "firstTokenMs": outcome.reply.as_ref().and_then(|r| r.first_token).map(|d| d.as_millis() as u64),
                    "totalMs": outcome.reply.as_ref().map(|r| r.elapsed.as_millis() as u64),
                }),
                ..Default::default()
            },
        )
        .await?;
        db::commit(tx).await
    }
    .await;
    if let Err(error) = finished {
        tracing::warn!(%error, post = %question.post_id, "recording an agent's answer failed");
    }
}

async fn attempt(state: &AppState, ai: &Ai, question: &Claimed) -> Result<Outcome, db::Error> {
    let failed = |error: String| Outcome {
        answer_id: None,
        error: Some(error),
        usage: Usage::default(),
        reply: None,
        model: String::new(),
    };
    let Some(agent) = ai.agent(&question.agent) else {
        return Ok(failed(format!(
            "the agent {:?} is no longer configured",
            question.agent
        )));
    };
    let Some(post) = db::posts::load(&state.db, &question.post_id)
        .await?
        .filter(|p| p.deleted_at.is_none())
    else {
        return Ok(failed("the question was deleted".into()));
    };
    let Some((asker, username)) = asker(state, &question.asker_id).await? else {
        return Ok(failed("the asker may no longer act".into()));
    };
    if question.attempts > MAX_ATTEMPTS {
        let why = format!("gave up after {MAX_ATTEMPTS} tries");
        reply(
            state,
            agent,
            &post,
            &format!("@{username} I could not answer: {why}."),
        )
        .await?;
        return Ok(failed(why));
    }
    let place = match admitted(state, ai, agent, &asker, &username, &question.channel_id).await? {
        Ok(place) => place,
        Err(why) => {
            reply(
                state,
                agent,
                &post,
                &format!("@{username} I can't answer you here: {why}."),
            )
            .await?;
            return Ok(failed(format!("refused: {why}")));
        }
    };
    let model = ai.model_of(&agent.config).to_string();
    let workspace = state.config().workspace.clone();
    let asker_name = names(&state.db, std::slice::from_ref(&post))
        .await?
        .remove(&post.user_id)
        .unwrap_or_else(|| username.clone());
    let where_ = match place.kind.as_str() {
        "direct" => "a direct conversation".to_string(),
        _ => format!(
            "the channel ~{}",
            place.name.as_deref().unwrap_or(&place.display_name)
        ),
    };
    let mut messages = vec![json!({
        "role": "system",
        "content": format!(
            "{}\n\nYou are {} (@{}), an assistant in the workspace \"{}\" of {}. {} asks you in {}. \
             Answer from the conversation{}; say so when it does not hold the answer. Be brief.",
            agent.config.instructions,
            agent.config.display_name,
            agent.config.name,
            workspace.display_name,
            workspace.organisation,
            asker_name,
            where_,
            if agent.config.tools { " and what your tools return" } else { "" },
        ),
    })];
    let posts = context(state, &post).await?;
    messages.extend(transcript(&state.db, &posts, Some(&agent.user_id)).await?);
    let tool_defs = if agent.config.tools {
        tools::definitions()
    } else {
        Vec::new()
    };

    // The answer's id is known before it is written, so the pieces streamed
    // and the post that ends them are one message to clients.
    let answer_id = new_id();
    let root = match place.kind.as_str() {
        "direct" => post.root_id.clone(),
        _ => Some(post.root_id.clone().unwrap_or_else(|| post.id.clone())),
    };
    let stream = Stream::start(
        state.db.clone(),
        Streaming {
            channel_id: place.channel_id.clone(),
            post_id: answer_id.clone(),
            root_id: root.clone(),
            user_id: agent.user_id.clone(),
            index: 0,
            text: String::new(),
        },
    );
    let mut usage = Usage::default();
    let mut text = String::new();
    let mut last_reply = None;
    let mut result = Ok(());
    for round in 0..=TOOL_ROUNDS {
        let offered = if round < TOOL_ROUNDS {
            &tool_defs[..]
        } else {
            &[]
        };
        let sender = stream.sender.clone();
        let mut on_text = |piece: &str| {
            let _ = sender.send(piece.to_string());
        };
        match ai
            .model
            .chat(
                Chat {
                    model: &model,
                    messages: &messages,
                    tools: offered,
                    max_tokens: MAX_ANSWER_TOKENS,
                },
                &mut on_text,
            )
            .await
        {
            Ok(reply) => {
                usage.prompt_tokens += reply.usage.prompt_tokens;
                usage.completion_tokens += reply.usage.completion_tokens;
                text.push_str(&reply.content);
                let calls = reply.tool_calls.clone();
                last_reply = Some(reply);
                if calls.is_empty() {
                    break;
                }
                messages.push(json!({
                    "role": "assistant",
                    "content": last_reply.as_ref().map(|r| r.content.clone()).unwrap_or_default(),
                    "tool_calls": calls.iter().map(|c| json!({
                        "id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    })).collect::<Vec<_>>(),
                }));
                for call in &calls {
                    let output = tools::run(state, &asker, &place, call).await;
                    messages.push(json!({
                        "role": "tool",
                        "tool_call_id": call.id,
                        "content": output,
                    }));
                }
            }
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    stream.finish().await;
    let (message, error) = match result {
        Ok(()) => {
            let text = text.trim();
            let message = if text.is_empty() {
                "(the model gave no answer)".to_string()
            } else if last_reply.as_ref().is_some_and(|r| r.truncated) {
                format!("{text}…")
            } else {
                text.to_string()
            };
            (message, None)
        }
        Err(error) => (failure_text(&username, &error), Some(error.to_string())),
    };
    let written = state
        .posts
        .post(
            state,
            posts::writer::Local {
                id: answer_id.clone(),
                channel_id: place.channel_id.clone(),
                author_id: agent.user_id.clone(),
                reply_to: root,
                message,
                file_ids: Vec::new(),
            },
        )
        .await;
    let answer_id = match written {
        Ok(_) => Some(answer_id),
        Err(posts::WriteError::Db(error)) => return Err(error),
        Err(refused) => {
            tracing::warn!(%refused, "an agent's answer was refused");
            None
        }
    };
    let mut last_reply = last_reply.unwrap_or_default();
    last_reply.content = text;
    Ok(Outcome {
        answer_id: if error.is_none() { answer_id } else { None },
        error,
        usage,
        reply: Some(last_reply),
        model,
    })
}

/// What the asker is told when the model could not answer.
fn failure_text(username: &str, error: &ModelError) -> String {
    format!(
        "@{username} I could not answer: {error}. Your message is kept; ask me again once the model is back."
    )
}

/// Posts `message` from `agent` in `post`'s thread (or beside it in a
/// direct conversation).
async fn reply(
    state: &AppState,
    agent: &Agent,
    post: &Post,
    message: &str,
) -> Result<(), db::Error> {
    let direct = sqlx::query_scalar!(
        r#"SELECT kind = 'direct' AS "direct!" FROM channels WHERE id = $1"#,
        post.channel_id
    )
    .fetch_one(&state.db)
    .await?;
    let root = match direct {
        true => post.root_id.clone(),
        false => Some(post.root_id.clone().unwrap_or_else(|| post.id.clone())),
    };
    match state
        .posts
        .post(
            state,
            posts::writer::Local {
                id: new_id(),
                channel_id: post.channel_id.clone(),
                author_id: agent.user_id.clone(),
                reply_to: root,
                message: message.to_string(),
                file_ids: Vec::new(),
            },
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(posts::WriteError::Db(error)) => Err(error),
        Err(refused) => {
            tracing::warn!(%refused, "an agent's reply was refused");
            Ok(())
        }
    }
}

/// The answer so far, sent to the channel every [`STREAM_EVERY`].
struct Stream {
    sender: tokio::sync::mpsc::UnboundedSender<String>,
    flusher: tokio::task::JoinHandle<()>,
}

/// Largest piece in one notification (PostgreSQL's payload limit is 8000 bytes).
const MAX_PIECE_BYTES: usize = 6_000;

impl Stream {
    fn start(db: sqlx::PgPool, mut piece: Streaming) -> Stream {
        let (sender, mut pieces) = tokio::sync::mpsc::unbounded_channel::<String>();
        let flusher = tokio::spawn(async move {
            // The first piece goes at once; then what arrives is sent at
            // most every STREAM_EVERY, and the rest as soon as the answer ends.
            let mut last = tokio::time::Instant::now() - STREAM_EVERY;
            let mut open = true;
            while open {
                let Some(first) = pieces.recv().await else {
                    break;
                };
                let mut text = first;
                let due = last + STREAM_EVERY;
                loop {
                    tokio::select! {
                        more = pieces.recv() => match more {
                            Some(more) => text.push_str(&more),
                            None => {
                                open = false;
                                break;
                            }
                        },
                        _ = tokio::time::sleep_until(due) => break,
                    }
                }
                last = tokio::time::Instant::now();
                while !text.is_empty() {
                    let mut end = text.len().min(MAX_PIECE_BYTES);
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    piece.text = text[..end].to_string();
                    text.drain(..end);
                    if let Err(error) = events::streaming(&db, &piece).await {
                        tracing::debug!(%error, "an answer's piece was not streamed");
                    }
                    piece.index += 1;
                }
            }
        });
        Stream { sender, flusher }
    }

    /// Sends what is left, and waits until it is sent.
    async fn finish(self) {
        drop(self.sender);
        let _ = self.flusher.await;
    }
}
