//! Prometheus metrics: names in one place, recorded through the `metrics` facade.
