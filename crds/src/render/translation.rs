//! A Workspace's `spec.features.translation`, rendered into its
//! RuntimeConfig: the one provider its text may be sent to, the languages
//! offered, and a LibreTranslate key as a file beside the config.

use crate::{
    config::{RuntimeConfig, SecretSource, TranslationConfig, TranslationProvider},
    Workspace,
};

/// The LibreTranslate key's file name, beside `runtime.yaml`.
pub const KEY_FILE: &str = "translation-api-key";

/// The LibreTranslate key Secret `spec.features.translation` names.
pub fn key_secret(workspace: &Workspace) -> Option<crate::common::SecretKeyRef> {
    workspace
        .spec
        .features
        .translation
        .as_ref()?
        .provider
        .as_ref()?
        .libre_translate
        .as_ref()?
        .api_key_secret
        .clone()
}

/// The Apertium provider `workspace` declares, if it does.
pub fn apertium(workspace: &Workspace) -> Option<&crate::workspace::ApertiumSpec> {
    workspace
        .spec
        .features
        .translation
        .as_ref()?
        .provider
        .as_ref()?
        .apertium
        .as_ref()
}

/// Whether `workspace` asks `entente up` to run Apertium's service (it
/// names no URL; an operator's `pod` is run from Debian's package there).
pub fn wants_local_apertium(workspace: &Workspace) -> bool {
    apertium(workspace).is_some_and(|a| a.url.is_none())
}

/// Why the translation of `workspace` cannot be rendered here, if it cannot.
pub fn problem(workspace: &Workspace, apertium_url: Option<&str>) -> Option<String> {
    let feature = workspace.spec.features.translation.as_ref()?;
    match &feature.provider {
        Some(provider) => match (&provider.apertium, apertium_url) {
            (Some(apertium), None) if apertium.url.is_none() => Some(
                "spec.features.translation.provider.apertium: give the url of Apertium's service, or a pod (with its image) for the operator to run".into(),
            ),
            _ => None,
        },
        None => match (&feature.language_model_ref, &workspace.spec.features.ai) {
            (Some(model), Some(ai)) if *model != ai.language_model_ref => Some(format!(
                "spec.features.translation.languageModelRef: translation through another LanguageModel ({model:?}) than features.ai's is not built yet"
            )),
            (Some(_), None) => Some(
                "spec.features.translation.languageModelRef: translation through a language model needs features.ai (not built otherwise yet)".into(),
            ),
            _ => None,
        },
    }
}

/// Renders translation into `config`. `apertium_url`: the Apertium service
/// `entente up` or the operator runs, for a provider that names none; `key`: the
/// LibreTranslate key, once read. Returns the key's file.
pub fn attach(
    config: &mut RuntimeConfig,
    workspace: &Workspace,
    apertium_url: Option<&str>,
    key: Option<&[u8]>,
    config_dir: &std::path::Path,
) -> Vec<(String, Vec<u8>)> {
    let Some(feature) = &workspace.spec.features.translation else {
        return Vec::new();
    };
    if problem(workspace, apertium_url).is_some() {
        return Vec::new();
    }
    let mut files = Vec::new();
    let provider = match &feature.provider {
        Some(provider) => match (&provider.apertium, &provider.libre_translate) {
            (Some(apertium), _) => TranslationProvider::Apertium {
                url: apertium
                    .url
                    .clone()
                    .or(apertium_url.map(String::from))
                    .unwrap_or_default(),
            },
            (None, Some(libre)) => {
                let api_key = match (&libre.api_key_secret, key) {
                    (Some(_), Some(key)) => {
                        files.push((KEY_FILE.to_string(), key.to_vec()));
                        Some(SecretSource::File(config_dir.join(KEY_FILE)))
                    }
                    // Not yet read: rendered once it is.
                    (Some(_), None) => return Vec::new(),
                    (None, _) => None,
                };
                TranslationProvider::LibreTranslate {
                    url: libre.url.clone(),
                    api_key,
                }
            }
            (None, None) => return Vec::new(),
        },
        None if config.ai.is_some() => TranslationProvider::LanguageModel,
        None => return Vec::new(),
    };
    config.translation = Some(TranslationConfig {
        provider,
        languages: feature.languages.clone(),
        default_language: feature
            .default_language
            .clone()
            .or_else(|| feature.languages.first().cloned())
            .unwrap_or_else(|| "en".into()),
        concurrency: feature.concurrency.max(1) as u32,
    });
    files
}
