//! `checkout-gateway sandbox`: gateway + simulator in one process, with a demo storefront at `/demo`.

pub mod demo;
