//! Domain types: parsed once at the edge, so that nothing past a handler's first line sees raw
//! strings. Money is minor units; card data masks itself.

pub mod card;
pub mod checkout;
pub mod customer;
pub mod dispute;
pub mod event;
pub mod failure;
mod id;
pub mod money;
pub mod new_checkout;
pub mod payment_method;
pub mod refund;
pub mod tax;
pub mod text;
pub mod time;
pub mod url;
pub mod validation;
pub mod webhook_endpoint;
