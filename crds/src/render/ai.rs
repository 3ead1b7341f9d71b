//! The model a Workspace's `spec.features.ai` names, rendered into its
//! RuntimeConfig: the endpoint (an external one's URL, or the address the
//! LanguageModel controller — or `entente up` — published for a model
//! server it runs), the model names, the agents, and the API key as a
//! secret file (never in the config).

use crate::{
    config::{AgentConfig, AiConfig, RuntimeConfig, SecretSource},
    language_model::ModelProvider,
    LanguageModel, Workspace,
};

/// The base URL workspaces reach `model` at: an external endpoint's own,
/// or the one its controller published once the model server exists.
pub fn endpoint(model: &LanguageModel) -> Option<String> {
    match &model.spec.external {
        Some(external) => Some(external.url.trim_end_matches('/').to_string()),
        None => model.status.as_ref().and_then(|s| s.endpoint.clone()),
    }
}

/// Whether requests to `model` carry an API key (a self-hosted server
/// always has one: the operator generates it when none is given).
pub fn has_api_key(model: &LanguageModel) -> bool {
    match &model.spec.external {
        Some(external) => external.api_key_secret.is_some(),
        None => true,
    }
}

/// Renders the model into `config` when `spec.features.ai` names `model`
/// and its endpoint is known; the key is read from `key_file`.
pub fn attach(
    config: &mut RuntimeConfig,
    workspace: &Workspace,
    model: Option<&LanguageModel>,
    key_file: std::path::PathBuf,
) {
    let (Some(feature), Some(model)) = (&workspace.spec.features.ai, model) else {
        return;
    };
    let Some(base_url) = endpoint(model) else {
        return;
    };
    let external = model.spec.external.as_ref();
    let translation = workspace.spec.features.translation.as_ref();
    config.ai = Some(AiConfig {
        provider: external
            .map(|e| e.provider)
            .unwrap_or(ModelProvider::OpenAI),
        base_url,
        api_key: has_api_key(model).then_some(SecretSource::File(key_file)),
        chat_model: model.spec.chat_model.clone(),
        transcription_model: model.spec.transcription_model.clone(),
        azure_deployment: external.and_then(|e| e.deployment.clone()),
        azure_api_version: external.and_then(|e| e.api_version.clone()),
        timeout_seconds: model.spec.timeout_seconds.max(1) as u32,
        summaries: feature.summaries,
        agents: feature
            .agents
            .iter()
            .map(|agent| AgentConfig {
                name: agent.name.clone(),
                display_name: agent
                    .display_name
                    .clone()
                    .unwrap_or_else(|| agent.name.clone()),
                instructions: agent.instructions.clone(),
                model: agent.model.clone(),
                channels: agent.channels.clone(),
                users: agent.users.clone(),
                tools: agent.tools,
            })
            .collect(),
        allow_partner_users: feature.allow_partner_users,
        max_concurrent_requests: feature.max_concurrent_requests.max(1) as u32,
        translation_languages: translation
            .filter(|t| t.language_model_ref.is_none())
            .map(|t| t.languages.clone())
            .unwrap_or_default(),
    });
}
