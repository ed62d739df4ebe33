//! The in-memory store, for the `sandbox` command only.
