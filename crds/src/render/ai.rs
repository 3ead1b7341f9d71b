//! The model a Workspace's `spec.features.ai` names, rendered into its
//! RuntimeConfig: the endpoint (an external one's URL, or the address the
//! LanguageModel controller — or `entente up` — published for a model
//! server it runs), the model names, the agents, and the API key as a file
//! beside the config (a Secret's, never in the config itself).

use crate::{
    common::SecretKeyRef,
    config::{AgentConfig, AiConfig, RuntimeConfig, SecretSource},
    language_model::ModelProvider,
    LanguageModel, Workspace,
};

/// The key's file name, beside `runtime.yaml`.
pub const KEY_FILE: &str = "ai-api-key";
/// The key in a generated API-key Secret.
pub const GENERATED_KEY: &str = "api-key";

/// The Secret the operator generates for a self-hosted model without one.
pub fn generated_key_secret(model_name: &str) -> String {
    format!("{model_name}-api-key")
}

/// The base URL workspaces reach `model` at: an external endpoint's own,
/// or the one its controller published once the model server exists.
pub fn endpoint(model: &LanguageModel) -> Option<String> {
    match &model.spec.external {
        Some(external) => Some(external.url.trim_end_matches('/').to_string()),
        None => model.status.as_ref().and_then(|s| s.endpoint.clone()),
    }
}

/// Where the API key requests to `model` carry is: the Secret the spec
/// names, or for a self-hosted model without one the Secret the operator
/// generates. `None`: an external endpoint that takes no key.
pub fn api_key_secret(model: &LanguageModel, model_name: &str) -> Option<SecretKeyRef> {
    match (&model.spec.external, &model.spec.self_hosted) {
        (Some(external), _) => external.api_key_secret.clone(),
        (None, Some(hosted)) => Some(hosted.api_key_secret.clone().unwrap_or(SecretKeyRef {
            name: generated_key_secret(model_name),
            key: GENERATED_KEY.into(),
        })),
        (None, None) => None,
    }
}

/// Renders the model into `config` when `spec.features.ai` names `model`,
/// its endpoint is known and its key (when it takes one) was read; returns
/// the key's file to put beside the config.
pub fn attach(
    config: &mut RuntimeConfig,
    workspace: &Workspace,
    model: Option<(&LanguageModel, Option<&[u8]>)>,
    config_dir: &std::path::Path,
) -> Vec<(String, Vec<u8>)> {
    let (Some(feature), Some((model, key))) = (&workspace.spec.features.ai, model) else {
        return Vec::new();
    };
    let Some(base_url) = endpoint(model) else {
        return Vec::new();
    };
    let name = feature.language_model_ref.as_str();
    let wants_key = api_key_secret(model, name).is_some();
    if wants_key && key.is_none() {
        // Not yet: the key is made by the model's controller.
        return Vec::new();
    }
    let external = model.spec.external.as_ref();
    let translation = workspace.spec.features.translation.as_ref();
    config.ai = Some(AiConfig {
        provider: external
            .map(|e| e.provider)
            .unwrap_or(ModelProvider::OpenAI),
        base_url,
        api_key: wants_key.then(|| SecretSource::File(config_dir.join(KEY_FILE))),
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
    match (wants_key, key) {
        (true, Some(key)) => vec![(KEY_FILE.to_string(), key.to_vec())],
        _ => Vec::new(),
    }
}
