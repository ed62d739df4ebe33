//! Layered configuration (defaults → TOML file → `GATEWAY__…` environment), validated at start-up.
