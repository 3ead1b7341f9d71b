//! LanguageModel spec → objects, for a self-hosted model `<lm>`: the API
//! key Secret `<lm>-api-key` (made once when the spec names none, then
//! kept), a Deployment `<lm>-model` of the model server the spec's image
//! runs, and a Service `<lm>` in front of it. Pure: no API calls.

use std::collections::BTreeMap;

use entente_crds::{language_model::SelfHostedModel, render::ai, LanguageModel};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, ImageVolumeSource,
            PersistentVolumeClaimVolumeSource, PodSpec, Probe, ResourceRequirements, Secret,
            SecretKeySelector, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
    ByteString,
};
use kube::ResourceExt;

use crate::{labels, reconcile::children::Children, workspace::build::deployment::pull_policy};

pub const COMPONENT: &str = "model";
/// The user and group the model server runs as.
const RUN_AS: i64 = 10001;
/// Environment variables model servers read their API key from: llama.cpp's
/// server and vLLM.
pub const KEY_VARIABLES: [&str; 2] = ["LLAMA_API_KEY", "VLLM_API_KEY"];

pub fn deployment_name(lm: &str) -> String {
    format!("{lm}-model")
}

fn metadata(lm: &LanguageModel, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: lm.namespace(),
        labels: Some(labels::labels(&lm.name_any(), COMPONENT)),
        ..Default::default()
    }
}

/// The Secret holding a generated API key.
pub fn key_secret(lm: &LanguageModel, key: &[u8]) -> Secret {
    Secret {
        metadata: metadata(lm, ai::generated_key_secret(&lm.name_any())),
        data: Some(BTreeMap::from([(
            ai::GENERATED_KEY.to_string(),
            ByteString(key.to_vec()),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// The model server's Deployment.
pub fn deployment(lm: &LanguageModel, hosted: &SelfHostedModel) -> Deployment {
    let name = lm.name_any();
    let selector = labels::selector(&name, COMPONENT);
    let key = ai::api_key_secret(lm, &name).expect("a self-hosted model always has a key");
    let mut env: Vec<EnvVar> = hosted
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            ..Default::default()
        })
        .collect();
    env.extend(KEY_VARIABLES.iter().map(|variable| EnvVar {
        name: variable.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: key.name.clone(),
                key: key.key.clone(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }));
    let source = &hosted.model_source;
    let weights = Volume {
        name: "weights".into(),
        persistent_volume_claim: source.persistent_volume_claim.as_ref().map(|pvc| {
            PersistentVolumeClaimVolumeSource {
                claim_name: pvc.claim_name.clone(),
                read_only: Some(true),
            }
        }),
        image: source.image.as_ref().map(|image| ImageVolumeSource {
            reference: Some(image.clone()),
            pull_policy: Some(pull_policy(hosted.pod.image_pull_policy).into()),
        }),
        ..Default::default()
    };
    let mut resources = hosted.pod.resources.clone().unwrap_or_default();
    if hosted.gpus > 0 {
        let gpus = Quantity(hosted.gpus.to_string());
        for list in [&mut resources.limits, &mut resources.requests] {
            list.get_or_insert_with(Default::default)
                .insert(hosted.gpu_resource_name.clone(), gpus.clone());
        }
    }
    let port = hosted.port;
    let (scratch, scratch_mount) = crate::pod::scratch();
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        period_seconds: Some(period),
        ..Default::default()
    };
    Deployment {
        metadata: metadata(lm, deployment_name(&name)),
        spec: Some(DeploymentSpec {
            replicas: Some(hosted.replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: crate::pod::template(
                &hosted.pod,
                labels::labels(&name, COMPONENT),
                PodSpec {
                    automount_service_account_token: Some(false),
                    security_context: Some(crate::pod::pod_security(RUN_AS)),
                    affinity: hosted.pod.affinity.clone(),
                    containers: vec![Container {
                        name: "model".into(),
                        image: hosted.pod.image.clone(),
                        image_pull_policy: Some(pull_policy(hosted.pod.image_pull_policy).into()),
                        args: (!hosted.args.is_empty()).then(|| hosted.args.clone()),
                        env: Some(env),
                        ports: Some(vec![ContainerPort {
                            name: Some("http".into()),
                            container_port: port,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        }]),
                        // llama.cpp's server and vLLM both answer /health
                        // once the weights are loaded.
                        readiness_probe: Some(probe("/health", 10)),
                        startup_probe: Some(Probe {
                            failure_threshold: Some(180),
                            ..probe("/health", 10)
                        }),
                        resources: Some(ResourceRequirements { ..resources }),
                        security_context: Some(crate::pod::container_security()),
                        volume_mounts: Some(vec![
                            VolumeMount {
                                name: "weights".into(),
                                mount_path: source.mount_path.clone(),
                                sub_path: source
                                    .persistent_volume_claim
                                    .as_ref()
                                    .and_then(|p| p.sub_path.clone()),
                                read_only: Some(true),
                                ..Default::default()
                            },
                            scratch_mount,
                        ]),
                        ..Default::default()
                    }],
                    volumes: Some(vec![weights, scratch]),
                    ..Default::default()
                },
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Service workspaces reach the model server at.
pub fn service(lm: &LanguageModel, hosted: &SelfHostedModel) -> Service {
    Service {
        metadata: metadata(lm, lm.name_any()),
        spec: Some(ServiceSpec {
            selector: Some(labels::selector(&lm.name_any(), COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: hosted.port,
                target_port: Some(IntOrString::Int(hosted.port)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The base URL of a self-hosted model's Service.
pub fn endpoint(lm: &LanguageModel, hosted: &SelfHostedModel) -> String {
    format!(
        "http://{}.{}.svc:{}",
        lm.name_any(),
        lm.namespace().unwrap_or_default(),
        hosted.port
    )
}

/// Everything a self-hosted LanguageModel wants; when the spec names no
/// key Secret of its own, the generated one is kept if it `exists`, else
/// made.
pub fn children(lm: &LanguageModel, hosted: &SelfHostedModel, exists: bool) -> Children {
    let mut children = Children::new(lm);
    if hosted.api_key_secret.is_none() {
        match exists {
            true => children.keep(
                &kube::api::ApiResource::erase::<Secret>(&()),
                ai::generated_key_secret(&lm.name_any()),
            ),
            false => children.add(&key_secret(lm, crate::calls::random_key().as_bytes())),
        }
    }
    children.add(&deployment(lm, hosted));
    children.add(&service(lm, hosted));
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(spec: serde_json::Value) -> LanguageModel {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "entente.dev/v1alpha1",
            "kind": "LanguageModel",
            "metadata": {"name": "local-llm", "namespace": "coalition", "uid": "u-1"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn a_model_server_is_a_deployment_its_weights_read_only_and_its_key_from_a_secret() {
        let lm = model(serde_json::json!({
            "chatModel": "smollm2",
            "selfHosted": {
                "replicas": 2,
                "modelSource": {"persistentVolumeClaim": {"claimName": "weights", "subPath": "smollm2"}},
                "args": ["-m", "/models/smollm2.gguf", "--port", "8000"],
                "gpus": 1,
                "pod": {"image": "ghcr.io/ggml-org/llama.cpp:server"},
            },
        }));
        let hosted = lm.spec.self_hosted.as_ref().unwrap();
        let deployment = deployment(&lm, hosted);
        assert_eq!(deployment.metadata.name.as_deref(), Some("local-llm-model"));
        let spec = deployment.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        let pod = spec.template.spec.unwrap();
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("ghcr.io/ggml-org/llama.cpp:server")
        );
        assert_eq!(container.args.as_ref().unwrap()[1], "/models/smollm2.gguf");
        let keys: Vec<(&str, &str)> = container
            .env
            .iter()
            .flatten()
            .filter_map(|e| {
                let secret = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
                Some((e.name.as_str(), secret.name.as_str()))
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("LLAMA_API_KEY", "local-llm-api-key"),
                ("VLLM_API_KEY", "local-llm-api-key")
            ]
        );
        assert!(
            container
                .env
                .iter()
                .flatten()
                .all(|e| e.value.as_deref() != Some("")),
            "no key in the spec itself"
        );
        let limits = container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap();
        assert_eq!(limits["nvidia.com/gpu"], Quantity("1".into()));
        let probe = container
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(probe.path.as_deref(), Some("/health"));
        assert_eq!(probe.port, IntOrString::Int(8000));
        let mounts = container.volume_mounts.as_ref().unwrap();
        assert_eq!(mounts[0].mount_path, "/models");
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(mounts[0].sub_path.as_deref(), Some("smollm2"));
        let volumes = pod.volumes.unwrap();
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "weights"
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        let service = service(&lm, hosted);
        assert_eq!(service.metadata.name.as_deref(), Some("local-llm"));
        assert_eq!(endpoint(&lm, hosted), "http://local-llm.coalition.svc:8000");
        // The key is made once, then kept.
        let first = children(&lm, hosted, false);
        assert!(first
            .kinds()
            .iter()
            .any(|(kind, name)| kind == "Secret" && name == "local-llm-api-key"));
        let image = model(serde_json::json!({
            "chatModel": "m",
            "selfHosted": {"modelSource": {"image": "registry/weights:1"}, "pod": {"image": "srv"},
                           "apiKeySecret": {"name": "mine", "key": "k"}},
        }));
        let hosted = image.spec.self_hosted.as_ref().unwrap();
        let pod = super::deployment(&image, hosted)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        assert_eq!(
            pod.volumes.unwrap()[0]
                .image
                .as_ref()
                .unwrap()
                .reference
                .as_deref(),
            Some("registry/weights:1")
        );
        assert!(
            !children(&image, hosted, false)
                .kinds()
                .iter()
                .any(|(kind, _)| kind == "Secret"),
            "a key the spec names is the person's, never made"
        );
    }
}
