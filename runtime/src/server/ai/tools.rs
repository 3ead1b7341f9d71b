//! Tools an agent may call (OpenAI tool calls), each run with the asking
//! user's permissions: search posts, read a thread, list a channel's
//! members. A partner's user is held to the shared channel they asked in.
//! Results are JSON text, bounded; a refusal is a result too, so the model
//! can say it.

use serde_json::{json, Value};

use super::{
    agents::{Asker, Place},
    client::ToolCall,
};
use crate::server::{auth, authz::gate::see, db, search, state::AppState};

/// The most a tool's result puts before the model, in characters.
const MAX_RESULT_CHARS: usize = 4_000;
/// Posts a search or a thread returns.
const MAX_POSTS: usize = 10;

pub fn definitions() -> Vec<Value> {
    vec![
        json!({"type": "function", "function": {
            "name": "search_posts",
            "description": "Search the posts the asking user may read. Filters: in:channel, from:user, before:YYYY-MM-DD, after:YYYY-MM-DD.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        }}),
        json!({"type": "function", "function": {
            "name": "read_thread",
            "description": "Read a thread (its first post and replies) by the id of any post in it.",
            "parameters": {"type": "object", "properties": {"post_id": {"type": "string"}}, "required": ["post_id"]},
        }}),
        json!({"type": "function", "function": {
            "name": "list_members",
            "description": "List the members of the channel the question was asked in.",
            "parameters": {"type": "object", "properties": {}},
        }}),
    ]
}

/// Runs `call` as `asker` would; its result as the model reads it.
pub async fn run(state: &AppState, asker: &Asker, place: &Place, call: &ToolCall) -> String {
    let arguments: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
    let result = match call.name.as_str() {
        "search_posts" => search_posts(state, asker, place, arguments["query"].as_str()).await,
        "read_thread" => read_thread(state, asker, place, arguments["post_id"].as_str()).await,
        "list_members" => list_members(state, asker, place).await,
        other => Err(format!("there is no tool {other:?}")),
    };
    let text = match result {
        Ok(value) => value.to_string(),
        Err(why) => json!({"error": why}).to_string(),
    };
    text.chars().take(MAX_RESULT_CHARS).collect()
}

async fn posts_json(state: &AppState, posts: &[db::posts::Post]) -> Result<Value, String> {
    let names = super::agents::names(&state.db, posts)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Value::Array(
        posts
            .iter()
            .take(MAX_POSTS)
            .map(|p| {
                json!({
                    "id": p.id,
                    "author": names.get(&p.user_id),
                    "at": p.created_at,
                    "text": p.message.chars().take(500).collect::<String>(),
                })
            })
            .collect(),
    ))
}

async fn search_posts(
    state: &AppState,
    asker: &Asker,
    place: &Place,
    query: Option<&str>,
) -> Result<Value, String> {
    let query = query.ok_or("search_posts needs a query")?;
    let mut terms = search::parse(query).map_err(|e| e.message)?;
    let caller = match asker {
        Asker::Local(caller) => caller.clone(),
        // A partner's user searches the shared channel alone, as a member
        // of it (a guest's reach: never a public channel they are not in).
        Asker::Partner { user_id, .. } => {
            terms.in_channels = vec![place.name.clone().unwrap_or_default().to_ascii_lowercase()];
            auth::Caller {
                user_id: user_id.clone(),
                role: crate::server::authz::roles::Role::Guest,
                token_id: String::new(),
                attributes: Default::default(),
                guest_policy: None,
            }
        }
    };
    let found = search::posts(state, &caller, &terms, MAX_POSTS as i64)
        .await
        .map_err(|e| e.message)?;
    posts_json(state, &found).await
}

async fn read_thread(
    state: &AppState,
    asker: &Asker,
    place: &Place,
    post_id: Option<&str>,
) -> Result<Value, String> {
    let post_id = post_id.ok_or("read_thread needs a post_id")?;
    let missing = || "no such post, or not one the asker may read".to_string();
    let post = db::posts::load(&state.db, post_id)
        .await
        .map_err(|e| e.to_string())?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(missing)?;
    let readable = match asker {
        Asker::Local(caller) => see(state, caller, &post.channel_id).await.is_ok(),
        Asker::Partner { .. } => post.channel_id == place.channel_id,
    };
    if !readable {
        return Err(missing());
    }
    let root = post.root_id.clone().unwrap_or(post.id);
    let thread = db::posts::thread(&state.db, &root)
        .await
        .map_err(|e| e.to_string())?;
    posts_json(state, &thread).await
}

async fn list_members(state: &AppState, asker: &Asker, place: &Place) -> Result<Value, String> {
    if let Asker::Local(caller) = asker {
        see(state, caller, &place.channel_id)
            .await
            .map_err(|e| e.message)?;
    }
    let members = auth::members(&state.db, &place.channel_id)
        .await
        .map_err(|e| e.message)?;
    Ok(Value::Array(
        members
            .iter()
            .map(|m| {
                json!({
                    "username": m.user.username,
                    "name": m.user.display_name,
                    "organisation": m.user.organisation,
                    "guest": m.user.guest,
                })
            })
            .collect(),
    ))
}
