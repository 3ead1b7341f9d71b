//! The model peer behind a recording proxy: llama.cpp's server
//! ([`entente_e2e::ModelServer`], shared by the test binary) reached through
//! a proxy that records each request the workspace sends it (path, key,
//! body, and when its answer began and ended), and can make the model
//! unreachable or overloaded.
//!
//! One thing is scripted, and only on request ([`Proxy::script_tool_call`]):
//! no model that can run here emits OpenAI tool calls (SmolLM2-135M does
//! not), so to exercise the agents' tool round the proxy answers the first
//! request offering tools with a tool call itself; what follows — the
//! server running the tool and asking again with its result — goes to the
//! real model.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{body::Body, extract::State, http::StatusCode, response::Response, Router};
use entente_e2e::{model, ModelServer};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Forward,
    /// Nothing listens: connections are refused.
    Down,
    /// Every request is answered 503.
    Overloaded,
}

/// A request the model was sent.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// From its arrival to the answer's first bytes, and to its end.
    pub first_byte: Option<Duration>,
    pub finished: Option<Duration>,
}

#[derive(Clone)]
struct ProxyState {
    target: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    overloaded: Arc<Mutex<bool>>,
    /// A tool call (name, arguments) to answer requests offering tools
    /// with, until the conversation holds a tool's result.
    tool_call: Arc<Mutex<Option<(String, String)>>>,
}

/// The recording proxy in front of the model.
pub struct Proxy {
    pub port: u16,
    state: ProxyState,
    mode: tokio::sync::watch::Sender<Mode>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let model = ModelServer::shared();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = ProxyState {
            target: model.port(),
            seen: Default::default(),
            overloaded: Default::default(),
            tool_call: Default::default(),
        };
        let (mode, mut modes) = tokio::sync::watch::channel(Mode::Forward);
        let app = Router::new().fallback(forward).with_state(state.clone());
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                if let Some(listener) = listener.take() {
                    let mut until = modes.clone();
                    let app = app.clone();
                    let serving = tokio::spawn(async move {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(async move {
                                let _ = until.wait_for(|m| *m == Mode::Down).await;
                            })
                            .await
                            .unwrap();
                    });
                    if modes.wait_for(|m| *m == Mode::Down).await.is_err() {
                        return;
                    }
                    serving.abort();
                    let _ = serving.await;
                }
                if modes.wait_for(|m| *m != Mode::Down).await.is_err() {
                    return;
                }
                listener = Some(
                    tokio::net::TcpListener::bind(("127.0.0.1", port))
                        .await
                        .unwrap(),
                );
            }
        });
        Proxy { port, state, mode }
    }

    pub fn set(&self, mode: Mode) {
        *self.state.overloaded.lock().unwrap() = mode == Mode::Overloaded;
        self.mode.send_replace(mode);
    }

    /// Answers each request offering tools whose conversation has no
    /// tool result yet with a call of `name` with `arguments` (JSON).
    pub fn script_tool_call(&self, name: &str, arguments: Value) {
        *self.state.tool_call.lock().unwrap() = Some((name.into(), arguments.to_string()));
    }

    /// Every request goes to the model again.
    pub fn stop_scripting(&self) {
        *self.state.tool_call.lock().unwrap() = None;
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Every chat request's messages, as one text each.
    pub fn prompts(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|s| s.path.ends_with("/chat/completions"))
            .map(|s| s.body["messages"].to_string())
            .collect()
    }
}

/// Notes when the answer it is dropped with ended.
struct Finished {
    seen: Arc<Mutex<Vec<Seen>>>,
    index: usize,
}

impl Drop for Finished {
    fn drop(&mut self) {
        let mut seen = self.seen.lock().unwrap();
        let request = &mut seen[self.index];
        request.finished = Some(request.at.elapsed());
    }
}

async fn forward(State(state): State<ProxyState>, request: axum::extract::Request) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let index = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            path: parts.uri.path().to_string(),
            authorization: parts
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string()),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            at,
            first_byte: None,
            finished: None,
        });
        seen.len() - 1
    };
    let offered = parsed_tools(&state, index);
    if let Some((name, arguments)) = offered {
        let call = serde_json::json!({"choices": [{"index": 0, "finish_reason": null, "delta": {
            "role": "assistant", "content": null,
            "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": name, "arguments": arguments}}]}}]});
        let end = serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
                                     "usage": {"prompt_tokens": 1, "completion_tokens": 1}});
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from(format!(
                "data: {call}\n\ndata: {end}\n\ndata: [DONE]\n\n"
            )))
            .unwrap();
    }
    if *state.overloaded.lock().unwrap() {
        return Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::from(r#"{"error": {"message": "overloaded"}}"#))
            .unwrap();
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<axum::body::Bytes>>();
    let mut upstream = axum::http::Request::builder()
        .method(parts.method)
        .uri(format!(
            "http://127.0.0.1:{}{}",
            state.target,
            parts.uri.path_and_query().unwrap()
        ));
    for (name, value) in &parts.headers {
        if name != "host" {
            upstream = upstream.header(name, value);
        }
    }
    let response = client
        .request(upstream.body(http_body_util::Full::new(bytes)).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let finished = Finished {
        seen: state.seen.clone(),
        index,
    };
    let seen = state.seen.clone();
    let timed = body.into_data_stream().map(move |chunk| {
        let _ = &finished;
        let mut seen = seen.lock().unwrap();
        let request = &mut seen[index];
        if request.first_byte.is_none() {
            request.first_byte = Some(request.at.elapsed());
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(timed))
}

/// The scripted tool call for request `index`, if one is set, the request
/// offers tools, and its conversation holds no tool result yet.
fn parsed_tools(state: &ProxyState, index: usize) -> Option<(String, String)> {
    let script = state.tool_call.lock().unwrap().clone()?;
    let seen = state.seen.lock().unwrap();
    let body = &seen[index].body;
    let offers = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let answered = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["role"] == "tool");
    (offers && !answered).then_some(script)
}

/// The `ai` section of a RuntimeConfig whose model is `proxy`, its key in
/// a file under `dir`: an `assistant` for anyone, and an `analyst` only
/// for alice in ~ops, without tools.
pub fn ai_section(proxy: &Proxy, dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let key = dir.join("model-key");
    std::fs::write(&key, model::API_KEY).unwrap();
    format!(
        r#"
ai:
  provider: OpenAI
  baseUrl: "{}"
  apiKey: {{file: {}}}
  chatModel: {}
  timeoutSeconds: 60
  summaries: true
  allowPartnerUsers: true
  maxConcurrentRequests: 2
  agents:
    - {{name: assistant, displayName: Assistant, instructions: "You help the team with what is said in this workspace.", tools: true}}
    - {{name: analyst, displayName: Analyst, instructions: "You analyse operations.", channels: [ops], users: [alice], tools: false}}
"#,
        proxy.endpoint(),
        key.display(),
        model::MODEL_NAME
    )
}
