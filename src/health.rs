//! `/health/live`, `/health/ready`, `/metrics`.
