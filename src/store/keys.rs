//! Every Redis key is built here, under the configured prefix.
