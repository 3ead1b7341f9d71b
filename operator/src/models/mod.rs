//! The LanguageModel controller: a self-hosted model server run as a
//! Deployment and Service of the spec's image ([`build`]), or an external
//! endpoint (Azure OpenAI, any OpenAI-compatible API) left where it is.
//! Either way the status says where workspaces reach it (`endpoint`),
//! which Secret holds its key (`apiKeySecret`), whether it answers and
//! which models it serves (read from its `/models`).
//!
//! A Workspace whose `spec.features.ai` names the model gets it rendered
//! into its RuntimeConfig with the key beside the config
//! ([`entente_crds::render::ai`]), and a NetworkPolicy egress rule to it
//! and nowhere else (the workspace's own network policy).

pub mod build;

use std::{sync::Arc, time::Duration};

use entente_crds::{language_model::LanguageModelStatus, render::ai, LanguageModel, Workspace};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Secret, Service},
};
use kube::{api::ApiResource, runtime::controller::Action, Api, ResourceExt};

use crate::reconcile::{
    judged::{judged, Judgement},
    Context, Error, Health,
};

/// The models an endpoint serves, asked with its key; why not, else.
pub async fn served(
    lm: &LanguageModel,
    base_url: &str,
    key: Option<&str>,
) -> Result<Vec<String>, String> {
    let external = lm.spec.external.as_ref();
    let provider = external.map(|e| e.provider).unwrap_or_default();
    let urls = provider.urls(
        base_url,
        external.and_then(|e| e.deployment.as_deref()),
        external.and_then(|e| e.api_version.as_deref()),
    )?;
    let header = key.map(|key| provider.key_header(key));
    let listed = crate::http::get_json(
        &urls.models,
        header.as_ref().map(|(name, value)| (*name, value.as_str())),
    )
    .await
    .map_err(|why| format!("cannot read {}: {why}", urls.models))?;
    Ok(listed["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(String::from))
        .collect())
}

pub async fn reconcile(lm: Arc<LanguageModel>, ctx: Arc<Context>) -> Result<Action, Error> {
    let client = ctx.client.clone();
    let namespace = lm.namespace().unwrap_or_default();
    let name = lm.name_any();
    judged(
        lm,
        ctx.clone(),
        async move |lm: &LanguageModel, _: Option<&Workspace>| {
            let mut status: LanguageModelStatus = lm.status.clone().unwrap_or_default();
            let judgement = |health: Health, status, recheck: Option<Duration>| Judgement {
                health,
                status,
                extra_conditions: Vec::new(),
                recheck,
            };
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            let key_ref = ai::api_key_secret(lm, &name);
            let key = match &key_ref {
                Some(key_ref) => match secrets.get_opt(&key_ref.name).await {
                    Ok(secret) => secret
                        .and_then(|s| s.data?.get(&key_ref.key).map(|b| b.0.clone()))
                        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string()),
                    Err(e) => {
                        return judgement(
                            Health::failing("ReadFailed", e.to_string()),
                            status,
                            None,
                        )
                    }
                },
                None => None,
            };
            status.api_key_secret = key_ref.clone();
            let kinds = [
                ApiResource::erase::<Deployment>(&()),
                ApiResource::erase::<Service>(&()),
                ApiResource::erase::<Secret>(&()),
            ];
            let (endpoint, replicas) = match (&lm.spec.self_hosted, &lm.spec.external) {
                (Some(hosted), _) => {
                    let children = build::children(lm, hosted, key.is_some());
                    if let Err(error) = children.apply(&client).await {
                        return judgement(
                            Health::failing(error.reason(), error.to_string()),
                            status,
                            None,
                        );
                    }
                    if let Err(error) = children.prune(&ctx, &kinds).await {
                        return judgement(
                            Health::failing(error.reason(), error.to_string()),
                            status,
                            None,
                        );
                    }
                    let ready = Api::<Deployment>::namespaced(client.clone(), &namespace)
                        .get_opt(&build::deployment_name(&name))
                        .await
                        .ok()
                        .flatten()
                        .and_then(|d| d.status?.ready_replicas)
                        .unwrap_or(0);
                    status.ready_replicas = Some(ready);
                    (build::endpoint(lm, hosted), Some((ready, hosted.replicas)))
                }
                (None, Some(external)) => {
                    // Nothing of the operator's runs for an external endpoint.
                    let none = crate::reconcile::children::Children::new(lm);
                    if let Err(error) = none.prune(&ctx, &kinds).await {
                        return judgement(
                            Health::failing(error.reason(), error.to_string()),
                            status,
                            None,
                        );
                    }
                    status.ready_replicas = None;
                    (external.url.trim_end_matches('/').to_string(), None)
                }
                (None, None) => {
                    return judgement(
                        Health::stalled(
                            "InvalidSpec",
                            "set exactly one of selfHosted or external",
                        ),
                        status,
                        None,
                    )
                }
            };
            status.endpoint = Some(endpoint.clone());
            if let (Some(key_ref), None) = (&key_ref, &key) {
                if lm.spec.external.is_some() || lm.spec.self_hosted.as_ref().is_some_and(|h| h.api_key_secret.is_some()) {
                    return judgement(
                        Health::stalled(
                            "SecretNotFound",
                            format!(
                                "Secret {:?} with key {:?} (the API key) not found in namespace {namespace:?}",
                                key_ref.name, key_ref.key
                            ),
                        ),
                        status,
                        Some(Duration::from_secs(60)),
                    );
                }
            }
            if let Some((ready, wanted)) = replicas {
                if ready == 0 {
                    status.models = Vec::new();
                    return judgement(
                        Health::progressing(
                            "Starting",
                            format!("0 of {wanted} model server replicas ready (loading the weights)"),
                        ),
                        status,
                        Some(Duration::from_secs(30)),
                    );
                }
            }
            match served(lm, &endpoint, key.as_deref()).await {
                Ok(models) => {
                    let chat = &lm.spec.chat_model;
                    let listed = models.iter().any(|m| m == chat);
                    status.models = models;
                    let replicas = replicas
                        .map(|(ready, wanted)| format!("{ready} of {wanted} replicas ready; "))
                        .unwrap_or_default();
                    let health = if listed || lm.spec.external.as_ref().is_some_and(|e| e.deployment.is_some()) {
                        Health::Ready {
                            message: format!("{replicas}{endpoint} serves {chat}"),
                        }
                    } else {
                        Health::stalled(
                            "ModelNotServed",
                            format!(
                                "{endpoint} does not serve {chat:?} (spec.chatModel); it serves {}",
                                status.models.join(", ")
                            ),
                        )
                    };
                    judgement(health, status, Some(Duration::from_secs(300)))
                }
                Err(why) => {
                    status.models = Vec::new();
                    judgement(
                        Health::failing("EndpointUnreachable", why),
                        status,
                        Some(Duration::from_secs(60)),
                    )
                }
            }
        },
    )
    .await
}
