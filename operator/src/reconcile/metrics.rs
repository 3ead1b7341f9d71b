//! Prometheus figures per kind: reconciles, their duration, and errors by family.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub kind: String,
    pub error: String,
}

#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<KindLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    duration: Family<KindLabel, Histogram>,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
            }),
        };
        registry.register(
            "entente_operator_reconciles",
            "Reconciles run, by kind",
            metrics.reconciles.clone(),
        );
        registry.register(
            "entente_operator_reconcile_errors",
            "Reconciles that failed, by kind and error family",
            metrics.errors.clone(),
        );
        registry.register(
            "entente_operator_reconcile_duration_seconds",
            "How long a reconcile took, by kind",
            metrics.duration.clone(),
        );
        metrics
    }

    pub fn reconciled(&self, kind: &str, seconds: f64) {
        let label = KindLabel { kind: kind.into() };
        self.reconciles.get_or_create(&label).inc();
        self.duration.get_or_create(&label).observe(seconds);
    }

    pub fn failed(&self, kind: &str, error: &str) {
        self.errors
            .get_or_create(&ErrorLabel {
                kind: kind.into(),
                error: error.into(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_per_kind_and_error_family_are_exposed() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        metrics.reconciled("Workspace", 0.02);
        metrics.reconciled("Workspace", 0.3);
        metrics.failed("Workspace", "object_store");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"entente_operator_reconciles_total{kind="Workspace"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"entente_operator_reconcile_errors_total{kind="Workspace",error="object_store"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"entente_operator_reconcile_duration_seconds_count{kind="Workspace"} 2"#
            ),
            "{text}"
        );
    }
}
