//! Merchant authentication: `Authorization: Bearer <key>` against `auth.api_keys`, compared in
//! constant time, then a per-key token bucket ([`crate::rate_limit`]; 429 with `Retry-After` when
//! empty).

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use crate::errors::ApiError;
use crate::state::AppState;

/// Proof that the request carried a valid merchant key (and was within its rate limit).
#[derive(Debug, Clone, Copy)]
pub struct Merchant {
    /// Which of the configured keys was used (for logs; never the key itself).
    pub key_index: usize,
}

impl FromRequest for Merchant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// The token of an `Authorization: Bearer <token>` value. HTTP's scheme names are
/// case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` are `Bearer` too.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn authenticate(req: &HttpRequest) -> Result<Merchant, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState is not registered")))?;
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .filter(|k| !k.is_empty())
        .ok_or_else(ApiError::unauthenticated)?;
    let key_index = state
        .merchant_keys
        .find(presented)
        .ok_or_else(ApiError::unauthenticated)?;
    state
        .merchant_keys
        .admit(key_index)
        .map_err(ApiError::rate_limited)?;
    Ok(Merchant { key_index })
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::access::MerchantKeys;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer k1", "bearer k1", "BEARER k1", "BeArEr   k1  "] {
            assert_eq!(bearer_token(value), Some("k1"), "{value}");
        }
        for value in ["Basic k1", "Bearerk1", "k1", ""] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }

    fn keys(rate: u32) -> MerchantKeys {
        MerchantKeys::new(
            &[
                SecretString::from("key-one-0123456789"),
                SecretString::from("key-two-0123456789"),
            ],
            rate,
        )
    }

    #[test]
    fn every_configured_key_is_accepted_and_nothing_else() {
        let k = keys(0);
        assert_eq!(k.find("key-one-0123456789"), Some(0));
        assert_eq!(k.find("key-two-0123456789"), Some(1));
        assert_eq!(k.find("key-one-012345678"), None);
        assert_eq!(k.find(""), None);
    }

    #[test]
    fn the_bucket_allows_a_burst_of_twice_the_rate_then_refuses() {
        let k = keys(2);
        for _ in 0..4 {
            assert!(k.admit(0).is_ok());
        }
        assert_eq!(k.admit(0), Err(1));
        // The other key has its own bucket.
        assert!(k.admit(1).is_ok());
    }

    #[test]
    fn a_zero_rate_disables_the_limit() {
        let k = keys(0);
        for _ in 0..10_000 {
            assert!(k.admit(0).is_ok());
        }
    }
}
