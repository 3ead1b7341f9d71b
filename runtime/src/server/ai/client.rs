//! The client of the workspace's OpenAI-compatible model (`ai` in the
//! RuntimeConfig): chat completions streamed over server-sent events,
//! with a time limit, retries with backoff before the answer begins, a
//! bound on requests at once, and errors a person can read.
//!
//! Every request goes to the one configured endpoint: its URLs are built
//! from `ai.baseUrl` alone and redirects are not followed.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    http::{header, HeaderValue, Method, Request, StatusCode, Uri},
};
use entente_crds::config::AiConfig;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};
use tokio::{sync::Semaphore, time::Instant};

use super::super::error::ApiError;

/// Tries of one request before it is given up (connection refused, 429, 5xx).
const ATTEMPTS: u32 = 3;
/// How long a request waits for a free slot before the asker is told the
/// model is busy.
const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// The most text an answer may grow to; the rest is cut.
pub const MAX_ANSWER_CHARS: usize = 12_000;
/// The largest single event or error body read from the model.
const MAX_EVENT: usize = 1 << 20;

use crate::server::outbound::{cause, Https};

/// Why the model gave no answer, as the asker is told.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("the language model is unreachable ({0})")]
    Unreachable(String),
    #[error("the language model is busy: {0} requests are being answered and more are waiting; try again in a minute")]
    Busy(usize),
    #[error("the language model is overloaded (it answered HTTP {0} to {ATTEMPTS} tries); try again in a minute")]
    Overloaded(u16),
    #[error("the language model did not answer within {0} s")]
    TimedOut(u64),
    #[error("the language model refused the request (HTTP {status}: {message})")]
    Refused { status: u16, message: String },
    #[error("the language model's answer could not be read ({0})")]
    Malformed(String),
}

impl From<ModelError> for ApiError {
    fn from(error: ModelError) -> ApiError {
        match error {
            ModelError::Busy(_) | ModelError::Overloaded(_) => ApiError {
                retry_after: Some(60),
                ..ApiError::unavailable(error.to_string())
            },
            other => ApiError::unavailable(other.to_string()),
        }
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// A finished answer.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// From sending the request to the first text (or tool call).
    pub first_token: Option<Duration>,
    pub elapsed: Duration,
    /// The text was cut at [`MAX_ANSWER_CHARS`].
    pub truncated: bool,
}

/// What one request asks.
pub struct Chat<'a> {
    pub model: &'a str,
    /// OpenAI chat messages (`role`, `content`, and for tools
    /// `tool_calls`/`tool_call_id`).
    pub messages: &'a [Value],
    /// OpenAI tool definitions; empty: none offered.
    pub tools: &'a [Value],
    pub max_tokens: u32,
}

/// The workspace's model.
pub struct Model {
    http: Https,
    chat_url: Uri,
    models_url: Uri,
    auth: Option<(header::HeaderName, HeaderValue)>,
    pub default_model: String,
    timeout: Duration,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl Model {
    pub fn new(config: &AiConfig) -> Result<Model, String> {
        let urls = config.provider.urls(
            &config.base_url,
            config.azure_deployment.as_deref(),
            config.azure_api_version.as_deref(),
        )?;
        let base = &config.base_url;
        let uri = |text: String| {
            text.parse::<Uri>()
                .map_err(|e| format!("ai.baseUrl {base:?} gives no valid URL: {e}"))
        };
        let key = match &config.api_key {
            Some(source) => Some(
                source
                    .read()
                    .map_err(|e| format!("ai.apiKey: {e}"))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let auth = match key {
            Some(key) => {
                let (name, value) = config.provider.key_header(&key);
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| "ai.apiKey holds characters a header cannot carry".to_string())?;
                value.set_sensitive(true);
                Some((header::HeaderName::from_static(name), value))
            }
            None => None,
        };
        let http = crate::server::outbound::https().map_err(|e| format!("TLS roots: {e}"))?;
        let capacity = config.max_concurrent_requests.max(1) as usize;
        Ok(Model {
            http,
            chat_url: uri(urls.chat)?,
            models_url: uri(urls.models)?,
            auth,
            default_model: config.chat_model.clone(),
            timeout: Duration::from_secs(config.timeout_seconds.max(1) as u64),
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        })
    }

    /// Where requests go (for status and logs; never carries the key).
    pub fn endpoint(&self) -> String {
        self.chat_url.to_string()
    }

    fn request(&self, method: Method, uri: &Uri, body: Option<&Value>) -> Request<Full<Bytes>> {
        let mut request = Request::builder().method(method).uri(uri.clone());
        if let Some((name, value)) = &self.auth {
            request = request.header(name, value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        request.body(body).expect("a request of valid parts")
    }

    /// The model names the endpoint serves (`/v1/models`).
    pub async fn models(&self) -> Result<Vec<String>, ModelError> {
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            self.http
                .request(self.request(Method::GET, &self.models_url, None)),
        )
        .await
        .map_err(|_| ModelError::TimedOut(10))?
        .map_err(|e| ModelError::Unreachable(cause(&e)))?;
        let status = response.status();
        let body = read_all(response.into_body()).await?;
        if !status.is_success() {
            return Err(refused(status, &body));
        }
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ModelError::Malformed(format!("/models: {e}")))?;
        Ok(value["data"]
            .as_array()
            .map(|models| {
                models
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Asks for a chat completion, streamed: `on_text` gets each piece of
    /// text as it arrives. Waits at most 30 s for a free slot.
    pub async fn chat(
        &self,
        chat: Chat<'_>,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Reply, ModelError> {
        let _permit = match tokio::time::timeout(QUEUE_WAIT, self.permits.acquire()).await {
            Ok(permit) => permit.expect("the semaphore is never closed"),
            Err(_) => return Err(ModelError::Busy(self.capacity)),
        };
        let started = Instant::now();
        let seconds = self.timeout.as_secs();
        match tokio::time::timeout(self.timeout, self.stream(chat, started, on_text)).await {
            Ok(result) => result,
            Err(_) => Err(ModelError::TimedOut(seconds)),
        }
    }

    async fn stream(
        &self,
        chat: Chat<'_>,
        started: Instant,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Reply, ModelError> {
        let mut body = json!({
            "model": chat.model,
            "messages": chat.messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": chat.max_tokens,
        });
        if !chat.tools.is_empty() {
            body["tools"] = Value::Array(chat.tools.to_vec());
        }
        let response = self.send_with_retries(&body).await?;
        let mut reply = Reply::default();
        let mut events = Events::default();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ModelError::Unreachable(cause(&e)))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            for event in events.push(&data)? {
                if event == "[DONE]" {
                    reply.elapsed = started.elapsed();
                    return Ok(reply);
                }
                let chunk: Value = serde_json::from_str(&event)
                    .map_err(|e| ModelError::Malformed(format!("an event is not JSON: {e}")))?;
                if let Some(error) = chunk.get("error") {
                    return Err(ModelError::Refused {
                        status: 200,
                        message: error_text(error),
                    });
                }
                apply(&chunk, &mut reply, started, on_text);
            }
        }
        // Some servers close without `[DONE]`: what arrived is the answer.
        reply.elapsed = started.elapsed();
        Ok(reply)
    }

    /// Sends `body`, again after a pause when the model could not be
    /// reached or answered 429/5xx — never once the answer has begun.
    async fn send_with_retries(
        &self,
        body: &Value,
    ) -> Result<axum::http::Response<hyper::body::Incoming>, ModelError> {
        let mut last = ModelError::Unreachable("no attempt was made".into());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt, &last)).await;
            }
            let response = match self
                .http
                .request(self.request(Method::POST, &self.chat_url, Some(body)))
                .await
            {
                Ok(response) => response,
                Err(e) => {
                    last = ModelError::Unreachable(cause(&e));
                    continue;
                }
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let text = read_all(response.into_body()).await.unwrap_or_default();
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                last = ModelError::Overloaded(status.as_u16());
                if let Some(seconds) = retry_after {
                    tokio::time::sleep(Duration::from_secs(seconds.min(10))).await;
                }
                continue;
            }
            return Err(refused(status, &text));
        }
        Err(last)
    }
}

/// The pause before try `attempt` (1, 2, …): 0.5 s, 1 s, … with jitter.
fn backoff(attempt: u32, _last: &ModelError) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    Duration::from_millis(500 * (1 << (attempt - 1)) + byte[0] as u64)
}

/// One streamed chunk applied to the answer so far.
fn apply(
    chunk: &Value,
    reply: &mut Reply,
    started: Instant,
    on_text: &mut (dyn FnMut(&str) + Send),
) {
    if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
        reply.usage = Usage {
            prompt_tokens: usage["prompt_tokens"].as_i64().unwrap_or(0),
            completion_tokens: usage["completion_tokens"].as_i64().unwrap_or(0),
        };
    }
    let Some(delta) = chunk["choices"].get(0).map(|c| &c["delta"]) else {
        return;
    };
    if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
        reply.first_token.get_or_insert_with(|| started.elapsed());
        let room = MAX_ANSWER_CHARS.saturating_sub(reply.content.chars().count());
        let piece: String = text.chars().take(room).collect();
        reply.truncated |= piece.len() < text.len();
        if !piece.is_empty() {
            on_text(&piece);
            reply.content.push_str(&piece);
        }
    }
    for call in delta["tool_calls"].as_array().into_iter().flatten() {
        reply.first_token.get_or_insert_with(|| started.elapsed());
        let index = call["index"].as_u64().unwrap_or(0) as usize;
        if index >= 16 {
            continue;
        }
        if reply.tool_calls.len() <= index {
            reply.tool_calls.resize(index + 1, ToolCall::default());
        }
        let slot = &mut reply.tool_calls[index];
        if let Some(id) = call["id"].as_str() {
            slot.id = id.to_string();
        }
        if let Some(name) = call["function"]["name"].as_str() {
            slot.name.push_str(name);
        }
        if let Some(arguments) = call["function"]["arguments"].as_str() {
            if slot.arguments.len() + arguments.len() <= 16_384 {
                slot.arguments.push_str(arguments);
            }
        }
    }
}

/// Server-sent events split out of the bytes as they arrive.
#[derive(Default)]
struct Events {
    buffer: Vec<u8>,
}

impl Events {
    /// The `data` of each event completed by `bytes`.
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, ModelError> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() > MAX_EVENT {
            return Err(ModelError::Malformed(format!(
                "an event is longer than {MAX_EVENT} bytes"
            )));
        }
        let mut events = Vec::new();
        // Split on bytes: a character cut between two reads is whole by
        // the time its event ends.
        while let Some((end, gap)) = event_end(&self.buffer) {
            let event = String::from_utf8_lossy(&self.buffer[..end]).replace("\r\n", "\n");
            self.buffer.drain(..end + gap);
            let data: Vec<&str> = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        Ok(events)
    }
}

/// Where the first event in `bytes` ends, and the length of the blank
/// line that ends it.
fn event_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
    match (find(b"\n\n"), find(b"\r\n\r\n")) {
        (Some(lf), Some(crlf)) if crlf < lf => Some((crlf, 4)),
        (Some(lf), _) => Some((lf, 2)),
        (None, Some(crlf)) => Some((crlf, 4)),
        (None, None) => None,
    }
}

async fn read_all(body: hyper::body::Incoming) -> Result<Bytes, ModelError> {
    Ok(Limited::new(body, MAX_EVENT)
        .collect()
        .await
        .map_err(|e| ModelError::Unreachable(format!("reading the answer: {e}")))?
        .to_bytes())
}

fn refused(status: StatusCode, body: &[u8]) -> ModelError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .map(|v| error_text(v.get("error").unwrap_or(&v)))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    ModelError::Refused {
        status: status.as_u16(),
        message,
    }
}

fn error_text(error: &Value) -> String {
    let text = match error {
        Value::String(s) => s.clone(),
        other => other["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| other.to_string()),
    };
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use entente_crds::language_model::ModelProvider;

    #[test]
    fn events_are_split_across_reads_and_line_endings() {
        let mut events = Events::default();
        assert!(events.push(b"data: {\"a\"").unwrap().is_empty());
        assert_eq!(
            events.push(b":1}\r\n\r\ndata: [DONE]\n\n").unwrap(),
            ["{\"a\":1}", "[DONE]"]
        );
        assert_eq!(events.push(b": keep-alive\n\ndata: x\n\n").unwrap(), ["x"]);
        // A character split between two reads.
        let cafe = "data: caf\u{e9}\n\n".as_bytes();
        assert!(events.push(&cafe[..10]).unwrap().is_empty());
        assert_eq!(events.push(&cafe[10..]).unwrap(), ["caf\u{e9}"]);
    }

    #[test]
    fn tool_calls_are_assembled_from_their_pieces() {
        let mut reply = Reply::default();
        let started = Instant::now();
        let mut texts = Vec::new();
        let mut on_text = |t: &str| texts.push(t.to_string());
        for chunk in [
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "search_posts", "arguments": "{\"qu"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "ery\":\"fuel\"}"}}]}}]}),
            json!({"choices": [{"delta": {"content": "ok"}}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}),
        ] {
            apply(&chunk, &mut reply, started, &mut on_text);
        }
        assert_eq!(
            reply.tool_calls,
            [ToolCall {
                id: "c1".into(),
                name: "search_posts".into(),
                arguments: "{\"query\":\"fuel\"}".into()
            }]
        );
        assert_eq!(reply.content, "ok");
        assert_eq!(texts, ["ok"]);
        assert_eq!(
            reply.usage,
            Usage {
                prompt_tokens: 7,
                completion_tokens: 3
            }
        );
    }

    #[test]
    fn azure_and_openai_urls_come_from_the_base_url_alone() {
        let mut config: AiConfig = serde_json::from_value(json!({
            "provider": "OpenAI", "baseUrl": "http://127.0.0.1:9/", "chatModel": "m",
            "timeoutSeconds": 5, "summaries": true, "allowPartnerUsers": false,
            "maxConcurrentRequests": 2
        }))
        .unwrap();
        let model = Model::new(&config).unwrap();
        assert_eq!(model.endpoint(), "http://127.0.0.1:9/v1/chat/completions");
        config.base_url = "https://x.openai.azure.us".into();
        config.provider = ModelProvider::AzureOpenAI;
        config.azure_deployment = Some("gpt".into());
        config.azure_api_version = Some("2024-10-21".into());
        let model = Model::new(&config).unwrap();
        assert_eq!(
            model.endpoint(),
            "https://x.openai.azure.us/openai/deployments/gpt/chat/completions?api-version=2024-10-21"
        );
    }
}
