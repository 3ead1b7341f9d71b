//! Sovereign AI: the workspace's OpenAI-compatible model ([`client`]),
//! agents that answer in channels ([`agents`]), the tools they may use
//! with the asking user's permissions ([`tools`]), and summaries
//! ([`summaries`]).
//!
//! What the model sees is only ever what the person asking may read:
//! context is gathered through the same read gate as the API, and a
//! partner's user is answered from the shared channel they asked in and
//! nothing else. Nothing is sent anywhere but the configured endpoint.

pub mod agents;
pub mod client;
pub mod summaries;
pub mod tools;

use std::sync::Arc;

use entente_crds::config::{AgentConfig, AiConfig};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::{
    auth::Caller,
    authz::roles::Role,
    db::{self, new_id},
    error::ApiError,
};

/// An agent and its bot user.
#[derive(Debug, Clone)]
pub struct Agent {
    pub config: AgentConfig,
    pub user_id: String,
}

/// The workspace's model and agents (`ai` in the RuntimeConfig; a change
/// needs a restart).
pub struct Ai {
    pub config: AiConfig,
    pub model: client::Model,
    pub agents: Vec<Agent>,
    /// Questions being answered by this server at once.
    answering: Arc<Semaphore>,
}

impl Ai {
    /// The model of `config`, and a bot user for each agent (created, or
    /// renamed as the config now says). An agent whose name a person
    /// already has is left out, and said so.
    pub async fn start(db: &sqlx::PgPool, config: &AiConfig) -> Result<Ai, String> {
        let model = client::Model::new(config)?;
        let mut agents = Vec::new();
        for agent in &config.agents {
            match db::users::upsert_bot(db, &new_id(), &agent.name, &agent.display_name)
                .await
                .map_err(|e| format!("creating agent {:?}: {e}", agent.name))?
            {
                Some(user_id) => agents.push(Agent {
                    config: agent.clone(),
                    user_id,
                }),
                None => tracing::error!(
                    agent = %agent.name,
                    "a person already has this username: the agent is not started (rename it in spec.features.ai.agents)"
                ),
            }
        }
        Ok(Ai {
            model,
            agents,
            answering: Arc::new(Semaphore::new(
                config.max_concurrent_requests.max(1) as usize
            )),
            config: config.clone(),
        })
    }

    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents
            .iter()
            .find(|a| a.config.name.eq_ignore_ascii_case(name))
    }

    /// The model an agent asks.
    pub fn model_of<'a>(&'a self, agent: &'a AgentConfig) -> &'a str {
        agent.model.as_deref().unwrap_or(&self.config.chat_model)
    }
}

/// Agents as the API lists them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentInfo {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub model: String,
    /// Channels it answers in; empty: any the asker may read.
    pub channels: Vec<String>,
    pub tools: bool,
}

/// The agents `caller` may ask.
pub fn agents_for(ai: &Ai, username: &str) -> Vec<AgentInfo> {
    ai.agents
        .iter()
        .filter(|a| serves(&a.config, username))
        .map(|a| AgentInfo {
            user_id: a.user_id.clone(),
            username: a.config.name.clone(),
            display_name: a.config.display_name.clone(),
            model: ai.model_of(&a.config).to_string(),
            channels: a.config.channels.clone(),
            tools: a.config.tools,
        })
        .collect()
}

/// Whether `agent` answers the user named `username`.
pub fn serves(agent: &AgentConfig, username: &str) -> bool {
    agent.users.is_empty() || agent.users.iter().any(|u| u.eq_ignore_ascii_case(username))
}

/// The model of the workspace, or why there is none.
pub fn enabled(ai: Option<&Arc<Ai>>) -> Result<&Arc<Ai>, ApiError> {
    ai.ok_or_else(|| {
        ApiError::forbidden(
            "this workspace has no language model (spec.features.ai names none, or it is not ready)",
        )
    })
}

/// Only a person signed in here asks the model through the API.
pub fn person(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Bot {
        return Err(ApiError::forbidden(
            "agents do not ask the model themselves",
        ));
    }
    Ok(())
}
