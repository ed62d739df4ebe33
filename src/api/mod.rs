//! The merchant REST API (`/v1/checkouts`), for the storefront backend: Bearer keys, JSON, design §3 errors.

pub mod checkout_request;
