//! Prometheus metrics of the SFU, at `/metrics`.

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};

pub struct Metrics {
    pub registry: Registry,
    /// RTP packets received from publishers.
    pub packets_received: Counter,
    /// RTP packets sent on to subscribers (one per subscriber).
    pub packets_forwarded: Counter,
    pub bytes_forwarded: Counter,
    /// Publishers' packets that never arrived (gaps in sequence numbers).
    pub packets_lost: Counter,
    pub rooms: Gauge,
    pub participants: Gauge,
    /// Joins refused (no or bad token, full room, draining).
    pub joins_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("entente_sfu");
        let metrics = Metrics {
            packets_received: Counter::default(),
            packets_forwarded: Counter::default(),
            bytes_forwarded: Counter::default(),
            packets_lost: Counter::default(),
            rooms: Gauge::default(),
            participants: Gauge::default(),
            joins_refused: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "packets_received",
            "RTP packets received from publishers",
            metrics.packets_received.clone(),
        );
        registry.register(
            "packets_forwarded",
            "RTP packets forwarded to subscribers",
            metrics.packets_forwarded.clone(),
        );
        registry.register(
            "bytes_forwarded",
            "RTP payload bytes forwarded to subscribers",
            metrics.bytes_forwarded.clone(),
        );
        registry.register(
            "packets_lost",
            "Publishers' RTP packets that never arrived",
            metrics.packets_lost.clone(),
        );
        registry.register("rooms", "Calls in progress", metrics.rooms.clone());
        registry.register(
            "participants",
            "Participants connected",
            metrics.participants.clone(),
        );
        registry.register(
            "joins_refused",
            "Joins refused: no or bad token, full room, draining",
            metrics.joins_refused.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
