//! The providers a workspace may declare, each reached only at its own
//! URL: Apertium's HTTP service (APY), a LibreTranslate-compatible API,
//! or the workspace's language model. Each says which language pairs it
//! offers, and a pair it does not is refused, never passed through.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    http::{header, HeaderValue, Method, Request, Uri},
};
use entente_crds::config::{TranslationConfig, TranslationProvider};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};

use crate::server::ai::{client::Chat, Ai};

/// Why a text was not translated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TranslateError {
    /// The provider cannot do this pair: final, and said to readers.
    #[error("{0}")]
    Unsupported(String),
    /// The provider failed now: tried again later.
    #[error("{0}")]
    Unavailable(String),
}

/// Language pairs as (from, to) BCP 47 tags.
type Pairs = Vec<(String, String)>;

use crate::server::outbound::Https;

/// A workspace's translation provider.
pub struct Provider {
    kind: Kind,
    http: Https,
    /// The pairs it offers, as (from, to) BCP 47 tags, read when it starts
    /// and again every 5 minutes.
    pairs: tokio::sync::Mutex<Option<(tokio::time::Instant, Pairs)>>,
    languages: Vec<String>,
    /// Tells a text's language among the workspace's (at least two of
    /// them known to it), where the provider cannot.
    detector: Option<whatlang::Detector>,
}

/// A detector choosing among `languages` only, if it knows two of them.
fn detector(languages: &[String]) -> Option<whatlang::Detector> {
    let allowed: Vec<whatlang::Lang> = languages
        .iter()
        .filter_map(|tag| whatlang::Lang::from_code(to_apertium(tag)))
        .collect();
    (allowed.len() >= 2).then(|| whatlang::Detector::with_allowlist(allowed))
}

enum Kind {
    Apertium { base: String },
    LibreTranslate { base: String, key: Option<String> },
    LanguageModel(Arc<Ai>),
}

/// ISO 639-3 codes Apertium names languages by, for the BCP 47 tags
/// people choose.
const ISO639_3: &[(&str, &str)] = &[
    ("en", "eng"),
    ("es", "spa"),
    ("fr", "fra"),
    ("de", "deu"),
    ("it", "ita"),
    ("pt", "por"),
    ("ca", "cat"),
    ("nl", "nld"),
    ("pl", "pol"),
    ("uk", "ukr"),
    ("ru", "rus"),
    ("ro", "ron"),
    ("gl", "glg"),
    ("eu", "eus"),
    ("ar", "ara"),
    ("sv", "swe"),
    ("da", "dan"),
    ("nb", "nob"),
    ("nn", "nno"),
    ("cy", "cym"),
];

fn to_apertium(tag: &str) -> String {
    let primary = tag.split('-').next().unwrap_or(tag).to_ascii_lowercase();
    ISO639_3
        .iter()
        .find(|(two, _)| *two == primary)
        .map_or(primary, |(_, three)| three.to_string())
}

fn from_apertium(code: &str) -> String {
    let code = code.split(['_', '-']).next().unwrap_or(code);
    ISO639_3
        .iter()
        .find(|(_, three)| *three == code)
        .map_or(code.to_string(), |(two, _)| two.to_string())
}

impl Provider {
    pub fn new(config: &TranslationConfig, ai: Option<Arc<Ai>>) -> Result<Provider, String> {
        let kind = match &config.provider {
            TranslationProvider::Apertium { url } => Kind::Apertium {
                base: url.trim_end_matches('/').to_string(),
            },
            TranslationProvider::LibreTranslate { url, api_key } => Kind::LibreTranslate {
                base: url.trim_end_matches('/').to_string(),
                key: match api_key {
                    Some(key) => Some(
                        key.read()
                            .map_err(|e| format!("translation.provider.libreTranslate.apiKey: {e}"))?
                            .trim()
                            .to_string(),
                    ),
                    None => None,
                },
            },
            TranslationProvider::LanguageModel => Kind::LanguageModel(ai.ok_or(
                "translation.provider is languageModel, and the workspace has no language model (ai)",
            )?),
        };
        Ok(Provider {
            kind,
            http: crate::server::outbound::https().map_err(|e| format!("TLS roots: {e}"))?,
            pairs: Default::default(),
            languages: config.languages.clone(),
            detector: detector(&config.languages),
        })
    }

    /// The provider's name, as readers are told it.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Apertium { .. } => "apertium",
            Kind::LibreTranslate { .. } => "libretranslate",
            Kind::LanguageModel(_) => "language-model",
        }
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, TranslateError> {
        let unavailable =
            |why: String| TranslateError::Unavailable(format!("{}: {why}", self.name()));
        let uri: Uri = url
            .parse()
            .map_err(|e| unavailable(format!("{url}: {e}")))?;
        let mut request = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(body) => {
                request = request.header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let response = tokio::time::timeout(
            Duration::from_secs(30),
            self.http
                .request(request.body(body).expect("a valid request")),
        )
        .await
        .map_err(|_| unavailable("no answer in 30 s".into()))?
        .map_err(|e| unavailable(crate::server::outbound::cause(&e)))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), 4 << 20)
            .collect()
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| unavailable(format!("HTTP {status}: not JSON")))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(TranslateError::Unsupported(format!(
                "{} refused it (HTTP {status}: {})",
                self.name(),
                value["error"]
                    .as_str()
                    .or(value["responseDetails"].as_str())
                    .unwrap_or_default()
            )));
        }
        Ok(value)
    }

    /// The pairs the provider offers, as (from, to) tags.
    pub async fn pairs(&self) -> Result<Vec<(String, String)>, TranslateError> {
        let mut cached = self.pairs.lock().await;
        if let Some((at, pairs)) = cached.as_ref() {
            if at.elapsed() < Duration::from_secs(300) {
                return Ok(pairs.clone());
            }
        }
        let pairs: Vec<(String, String)> = match &self.kind {
            Kind::Apertium { base } => self
                .call(Method::GET, &format!("{base}/listPairs"), None)
                .await?["responseData"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        from_apertium(p["sourceLanguage"].as_str().unwrap_or_default()),
                        from_apertium(p["targetLanguage"].as_str().unwrap_or_default()),
                    )
                })
                .collect(),
            Kind::LibreTranslate { base, .. } => self
                .call(Method::GET, &format!("{base}/languages"), None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|l| {
                    let from = l["code"].as_str().unwrap_or_default().to_string();
                    l["targets"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str())
                        .filter(|t| *t != from)
                        .map(|t| (from.clone(), t.to_string()))
                        .collect::<Vec<_>>()
                })
                .collect(),
            // A model is asked for any pair of the languages offered.
            Kind::LanguageModel(_) => self
                .languages
                .iter()
                .flat_map(|a| {
                    self.languages
                        .iter()
                        .filter(move |b| *b != a)
                        .map(move |b| (a.clone(), b.clone()))
                })
                .collect(),
        };
        let mut pairs = pairs;
        pairs.sort();
        pairs.dedup();
        *cached = Some((tokio::time::Instant::now(), pairs.clone()));
        Ok(pairs)
    }

    /// The language `text` is in, if it can be told with confidence;
    /// otherwise `None`, and the author's language stands. A
    /// LibreTranslate-compatible API is asked (`/detect`); for Apertium
    /// and a language model it is told here, in-process, among the
    /// workspace's languages: Apertium's service tells a language only by
    /// running every language's analyser in new processes per request
    /// (about 100 ms, ten times a translation), and a model would cost a
    /// request of its own.
    pub async fn detect(&self, text: &str) -> Option<String> {
        if text.split_whitespace().count() < 3 {
            return None;
        }
        let Kind::LibreTranslate { base, key } = &self.kind else {
            return self.detect_here(text);
        };
        let mut body = json!({"q": text});
        if let Some(key) = key {
            body["api_key"] = json!(key);
        }
        let answer = self
            .call(Method::POST, &format!("{base}/detect"), Some(body))
            .await
            .ok()?;
        // (language, confidence from 0 to 1), best first.
        let mut scores: Vec<(String, f64)> = answer
            .as_array()?
            .iter()
            .filter_map(|d| {
                let confidence = d["confidence"].as_f64()?;
                Some((
                    Self::primary(d["language"].as_str()?),
                    // LibreTranslate says it out of 100.
                    if confidence > 1.0 {
                        confidence / 100.0
                    } else {
                        confidence
                    },
                ))
            })
            .collect();
        scores.sort_by(|a, b| b.1.total_cmp(&a.1));
        let best = scores.first()?;
        let next = scores.get(1).map_or(0.0, |s| s.1);
        (best.1 >= 0.5 && best.1 - next >= 0.3).then(|| best.0.clone())
    }

    /// [`Provider::detect`] in-process (whatlang's trigram profiles),
    /// choosing among the workspace's languages only.
    fn detect_here(&self, text: &str) -> Option<String> {
        let info = self.detector.as_ref()?.detect(text)?;
        // whatlang's own "reliable" (0.9) refuses most sentences of a
        // chat; below 0.4 its guesses are often wrong (German among en,
        // es, fr scores 0.02).
        (info.confidence() >= 0.4).then(|| from_apertium(info.lang().code()))
    }

    pub fn primary(tag: &str) -> String {
        tag.split('-').next().unwrap_or(tag).to_ascii_lowercase()
    }

    /// `text` from `from` into `to`; a pair the provider does not offer is
    /// refused, saying so.
    pub async fn translate(
        &self,
        text: &str,
        from: &str,
        to: &str,
    ) -> Result<String, TranslateError> {
        let (from, to) = (Self::primary(from), Self::primary(to));
        if !self
            .pairs()
            .await?
            .iter()
            .any(|(a, b)| *a == from && *b == to)
        {
            return Err(TranslateError::Unsupported(format!(
                "{from}→{to} is not a pair {} offers here",
                self.name()
            )));
        }
        match &self.kind {
            Kind::Apertium { base } => {
                let url = format!(
                    "{base}/translate?markUnknown=no&langpair={}%7C{}&q={}",
                    to_apertium(&from),
                    to_apertium(&to),
                    crate::server::api::files::percent_encode(text)
                );
                let answer = self.call(Method::GET, &url, None).await?;
                answer["responseData"]["translatedText"]
                    .as_str()
                    .map(String::from)
                    .ok_or_else(|| {
                        TranslateError::Unavailable("apertium: no translatedText".into())
                    })
            }
            Kind::LibreTranslate { base, key } => {
                let mut body = json!({"q": text, "source": from, "target": to, "format": "text"});
                if let Some(key) = key {
                    body["api_key"] = json!(key);
                }
                let answer = self
                    .call(Method::POST, &format!("{base}/translate"), Some(body))
                    .await?;
                answer["translatedText"]
                    .as_str()
                    .map(String::from)
                    .ok_or_else(|| {
                        TranslateError::Unavailable("libretranslate: no translatedText".into())
                    })
            }
            Kind::LanguageModel(ai) => {
                let messages = [
                    json!({"role": "system", "content": format!(
                        "Translate the user's message from the language tagged {from} into the language tagged {to}. Reply with the translation only."
                    )}),
                    json!({"role": "user", "content": text}),
                ];
                let reply = ai
                    .model
                    .chat(
                        Chat {
                            model: &ai.config.chat_model,
                            messages: &messages,
                            tools: &[],
                            max_tokens: 1024,
                        },
                        &mut |_| {},
                    )
                    .await
                    .map_err(|e| TranslateError::Unavailable(e.to_string()))?;
                Ok(reply.content.trim().to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_apertium_codes_map_both_ways() {
        assert_eq!(to_apertium("en-GB"), "eng");
        assert_eq!(to_apertium("es"), "spa");
        assert_eq!(from_apertium("eng_US"), "en");
        assert_eq!(from_apertium("xyz"), "xyz");
    }

    fn apertium(languages: &[&str]) -> Provider {
        let languages: Vec<String> = languages.iter().map(|l| l.to_string()).collect();
        Provider {
            kind: Kind::Apertium {
                base: "http://127.0.0.1:9".into(),
            },
            http: crate::server::outbound::https().unwrap(),
            pairs: Default::default(),
            detector: detector(&languages),
            languages,
        }
    }

    #[tokio::test]
    async fn a_language_is_told_among_the_workspaces_only_and_when_sure() {
        let provider = apertium(&["en", "es", "fr"]);
        let detect = |text: &'static str| provider.detect(text);
        assert_eq!(
            detect("El convoy sale del puerto norte al amanecer")
                .await
                .as_deref(),
            Some("es")
        );
        assert_eq!(
            detect("The convoy leaves the north harbour at dawn")
                .await
                .as_deref(),
            Some("en")
        );
        assert_eq!(
            detect("Le convoi quitte le port nord à l'aube")
                .await
                .as_deref(),
            Some("fr")
        );
        assert_eq!(detect("ok then").await, None, "too short to tell");
        // German is not among them: never answered as German.
        assert_ne!(
            detect("Der Konvoi verlässt den Nordhafen im Morgengrauen")
                .await
                .as_deref(),
            Some("de")
        );
    }
}
