//! Operations: a request id and a structured log line per request, Prometheus
//! metrics at `/metrics`, and the per-user rate limit.

use std::{num::NonZeroU32, sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::HeaderValue,
    middleware::Next,
    response::Response,
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tracing::Instrument;

use super::{error::ApiError, state::AppState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route pattern (`/api/v1/channels/{id}`), never the raw path: ids
    /// would make a series per object.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AiLabels {
    model: String,
    /// `agent` or `summary`.
    purpose: String,
    /// `ok` or `failed`.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TranslationLabels {
    provider: String,
    /// `ok`, `unsupported` or `unavailable`.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AiTokenLabels {
    model: String,
    /// `prompt` or `completion`.
    kind: String,
}

/// This replica's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    pub websockets: Gauge,
    pub rate_limited: Counter,
    /// Connections closed at once: their address held too many.
    pub refused_connections: Counter,
    /// Federation connections refused at the TLS layer or for their identity.
    pub federation_refused_connections: Counter,
    /// Events from partners refused (and audited).
    pub federation_rejected_events: Counter,
    /// Bytes of files served to partners, and received from them.
    pub federation_file_bytes_sent: Counter,
    pub federation_file_bytes_received: Counter,
    /// Groups of local posts committed together, and the posts in them
    /// (their ratio is the mean group size).
    pub post_groups: Counter,
    pub posts_grouped: Counter,
    ai_requests: Family<AiLabels, Counter>,
    ai_tokens: Family<AiTokenLabels, Counter>,
    ai_first_token: Histogram,
    ai_duration: Histogram,
    translations: Family<TranslationLabels, Counter>,
    translation_duration: Family<ProviderLabels, Histogram>,
    /// Work waiting in each durable queue, read when scraped.
    pub queued: Family<QueueLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `translation` or `agent`.
    pub queue: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 16,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("entente");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let websockets = Gauge::default();
        let rate_limited = Counter::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            duration.clone(),
        );
        registry.register(
            "websocket_connections",
            "Open live-event WebSockets",
            websockets.clone(),
        );
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429",
            rate_limited.clone(),
        );
        let refused_connections = Counter::default();
        registry.register(
            "refused_connections",
            "API connections closed at once: their address held too many",
            refused_connections.clone(),
        );
        let federation_refused_connections = Counter::default();
        registry.register(
            "federation_refused_connections",
            "Federation connections refused: no valid partner certificate",
            federation_refused_connections.clone(),
        );
        let federation_rejected_events = Counter::default();
        registry.register(
            "federation_rejected_events",
            "Events from partners refused and audited",
            federation_rejected_events.clone(),
        );
        let federation_file_bytes_sent = Counter::default();
        registry.register(
            "federation_file_bytes_sent",
            "Bytes of files served to partners",
            federation_file_bytes_sent.clone(),
        );
        let federation_file_bytes_received = Counter::default();
        registry.register(
            "federation_file_bytes_received",
            "Bytes of partners' files received and stored",
            federation_file_bytes_received.clone(),
        );
        let post_groups = Counter::default();
        registry.register(
            "post_groups",
            "Groups of local posts written and committed together",
            post_groups.clone(),
        );
        let posts_grouped = Counter::default();
        registry.register(
            "posts_grouped",
            "Local posts written in those groups",
            posts_grouped.clone(),
        );
        let ai_requests = Family::<AiLabels, Counter>::default();
        registry.register(
            "ai_requests",
            "Requests to the language model, by model, purpose and outcome",
            ai_requests.clone(),
        );
        let ai_tokens = Family::<AiTokenLabels, Counter>::default();
        registry.register(
            "ai_tokens",
            "Tokens the language model read (prompt) and wrote (completion)",
            ai_tokens.clone(),
        );
        let ai_first_token = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.05, 2.0, 12),
        );
        registry.register(
            "ai_first_token_seconds",
            "Time from a request to the model's first token",
            ai_first_token.clone(),
        );
        let ai_duration = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.05, 2.0, 14),
        );
        registry.register(
            "ai_request_duration_seconds",
            "Time from a request to the model's whole answer",
            ai_duration.clone(),
        );
        let translations = Family::<TranslationLabels, Counter>::default();
        registry.register(
            "translations",
            "Posts translated into a language, by provider and outcome",
            translations.clone(),
        );
        let translation_duration =
            Family::<ProviderLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                    0.01, 2.0, 14,
                ))
            });
        registry.register(
            "translation_duration_seconds",
            "Time a provider took to translate a post, by provider",
            translation_duration.clone(),
        );
        let queued = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queued",
            "Work waiting in a durable queue: posts to translate, questions for agents",
            queued.clone(),
        );
        Metrics {
            translations,
            translation_duration,
            queued,
            ai_requests,
            ai_tokens,
            ai_first_token,
            ai_duration,
            registry,
            post_groups,
            posts_grouped,
            requests,
            duration,
            websockets,
            rate_limited,
            refused_connections,
            federation_refused_connections,
            federation_rejected_events,
            federation_file_bytes_sent,
            federation_file_bytes_received,
        }
    }
}

impl Metrics {
    /// Counts one request to the model.
    pub fn ai_request(
        &self,
        model: &str,
        purpose: &str,
        ok: bool,
        usage: super::ai::client::Usage,
        reply: Option<&super::ai::client::Reply>,
    ) {
        if model.is_empty() {
            return;
        }
        self.ai_requests
            .get_or_create(&AiLabels {
                model: model.into(),
                purpose: purpose.into(),
                outcome: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
        for (kind, tokens) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
        ] {
            self.ai_tokens
                .get_or_create(&AiTokenLabels {
                    model: model.into(),
                    kind: kind.into(),
                })
                .inc_by(tokens.max(0) as u64);
        }
        if let Some(reply) = reply {
            if let Some(first) = reply.first_token {
                self.ai_first_token.observe(first.as_secs_f64());
            }
            self.ai_duration.observe(reply.elapsed.as_secs_f64());
        }
    }

    /// Counts one post's translation.
    pub fn translation(
        &self,
        provider: &str,
        result: &Result<String, super::translate::providers::TranslateError>,
        took: std::time::Duration,
    ) {
        use super::translate::providers::TranslateError;
        let outcome = match result {
            Ok(_) => "ok",
            Err(TranslateError::Unsupported(_)) => "unsupported",
            Err(TranslateError::Unavailable(_)) => "unavailable",
        };
        self.translations
            .get_or_create(&TranslationLabels {
                provider: provider.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.translation_duration
            .get_or_create(&ProviderLabels {
                provider: provider.into(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// Gives every request an id (`x-request-id`, kept if the client sent one),
/// runs it inside a span carrying that id, logs one line when it is answered,
/// and counts it.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(String::from)
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            duration_ms = elapsed.as_secs_f64() * 1e3,
            "answered"
        )
    });
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status,
        })
        .inc();
    state
        .metrics
        .duration
        .get_or_create(&RouteLabels { route })
        .observe(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Requests per minute per user, with bursts up to the same number.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl RateLimit {
    pub fn per_minute(requests: u32) -> Arc<RateLimit> {
        let quota = Quota::per_minute(NonZeroU32::new(requests.max(1)).expect("at least one"));
        Arc::new(RateLimit {
            limiter: governor::RateLimiter::keyed(quota),
        })
    }

    /// Typing indicators: one a second per user, in bursts of three (a
    /// client sends one every few seconds while someone types).
    pub fn typing() -> Arc<RateLimit> {
        let quota = Quota::per_second(NonZeroU32::MIN)
            .allow_burst(NonZeroU32::new(3).expect("three is not zero"));
        Arc::new(RateLimit {
            limiter: governor::RateLimiter::keyed(quota),
        })
    }

    /// Whether `key` may go now (no error, no metric: for what is dropped
    /// silently, such as a typing indicator).
    pub fn allows(&self, key: &str) -> bool {
        self.limiter.check_key(&key.to_string()).is_ok()
    }

    /// Ok, or the 429 to answer with its `Retry-After`.
    pub fn check(&self, user_id: &str, metrics: &Metrics) -> Result<(), ApiError> {
        self.limiter
            .check_key(&user_id.to_string())
            .map_err(|not_until| {
                metrics.rate_limited.inc();
                ApiError::rate_limited(
                    not_until.wait_time_from(governor::clock::DefaultClock::default().now()),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_per_user_and_says_when_to_retry() {
        let limit = RateLimit::per_minute(3);
        let metrics = Metrics::default();
        for _ in 0..3 {
            limit.check("alice", &metrics).unwrap();
        }
        let refused = limit.check("alice", &metrics).unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.retry_after.unwrap() >= 1);
        limit.check("bob", &metrics).unwrap();
        assert!(metrics
            .render()
            .contains("entente_rate_limited_requests_total 1"));
    }
}
