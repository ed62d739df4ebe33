//! `Idempotency-Key` with Stripe's semantics: the same key and body within 24 h
//! replays the stored response (`Idempotent-Replayed: true`); the same key with another body is
//! 400 `idempotency_error`; the same key while the first request still runs is 409.
//!
//! The request fingerprint is an HMAC of the raw body keyed with a secret, never a plain hash:
//! the body held a card number, and a plain hash of a card number can be brute-forced.

use std::future::Future;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use super::respond;
use crate::errors::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::store::{Claim, IdempotencyBegin, StoredResponse};

pub const HEADER: &str = "Idempotency-Key";
/// `Idempotent-Replayed` (a `HeaderName` is kept in lower case; header names are case-insensitive).
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_LEN: usize = 255;

/// A client-chosen key: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let ok = !s.is_empty() && s.len() <= MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice).",
            )
            .with_param(HEADER))
        }
    }

    pub fn from_request(req: &HttpRequest) -> Result<Option<Self>, ApiError> {
        match req.headers().get(HEADER) {
            None => Ok(None),
            Some(v) => Self::parse(v.to_str().unwrap_or("\u{0}")).map(Some),
        }
    }

    /// The key within one endpoint and resource (the key's scope is the endpoint
    /// and the checkout), so that the same key on two checkouts is two requests.
    pub fn scoped(&self, scope: &str) -> Self {
        Self(format!("{scope} {}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn fingerprint(state: &AppState, body: &[u8]) -> String {
    state.fingerprint_key.fingerprint(body)
}

/// The fingerprint of a JSON body that `strict_json` accepted, taken over its canonical form:
/// "the same body" means the same JSON, whatever its whitespace or key order.
pub fn fingerprint_json(state: &AppState, body: &[u8]) -> String {
    fingerprint(state, &super::strict_json::canonical(body))
}

/// What the request that owns a key works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begun {
    /// The resource recorded with the claim: the caller's own, or, when `resumed` or
    /// `released`, the one the earlier request had recorded.
    pub resource: Option<String>,
    /// The key was taken over from a request that never finished (a crash): what it began
    /// may be stored already, and must be resumed, not started again.
    pub resumed: bool,
    /// An earlier request with this key failed having sent nothing to MSP (its answer asked
    /// for this retry): what it wrote may have landed after it gave up on the write (a stalled
    /// Redis), so the resource may be stored already, but it never reached MSP.
    pub released: bool,
}

/// Runs `work` at most once per key and body, storing its response for replays.
///
/// With a `resource` (the id of what the request creates), the claim records it before `work`
/// runs, and stays "in flight" (409) only `idempotency.in_flight_ttl_s`: a request that never
/// finishes (the gateway crashed) no longer blocks its key for 24 hours. Its retry takes the
/// key over and gets [`Begun::resumed`] with the interrupted request's resource, which `work`
/// must resume rather than start again (a checkout or a refund, both of whose ids are made
/// before the claim). Without a `resource` (work that cannot tell whether it ran) the claim
/// stays in flight until the key expires.
pub async fn run_once<F, Fut>(
    state: &AppState,
    key: &IdempotencyKey,
    fingerprint: &str,
    resource: Option<&str>,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(Begun) -> Fut,
    Fut: Future<Output = Result<StoredResponse, ApiError>>,
{
    let store = state.flows.store.as_ref();
    let in_flight_ms = i64::try_from(state.settings.idempotency.in_flight_ttl_s)
        .unwrap_or(i64::MAX / 1_000)
        .saturating_mul(1_000);
    let claim = Claim {
        fingerprint,
        resource,
        now_ms: state.flows.clock.now().timestamp_millis(),
        in_flight_ms: resource.is_some().then_some(in_flight_ms),
    };
    let begun = store
        .idempotency_claim(key.as_str(), &claim)
        .await
        .map_err(ApiError::store_unavailable)?;
    match begun {
        IdempotencyBegin::Started {
            owner,
            resource,
            resumed,
            released,
        } => {
            let result = work(Begun {
                resource,
                resumed,
                released,
            })
            .await;
            let stored = match result {
                Ok(stored) => stored,
                // A resumed request keeps its claim even so: the claim holds the interrupted
                // request's resource, which may have reached MSP, and freeing the key would let
                // the next retry start another. It lapses again after its in-flight time, and
                // the retry after that resumes the same resource.
                Err(e) if e.code().retry_safe() && resumed => return Err(e),
                // Nothing reached MSP: release the key so that the retry the answer asks for
                // can run (on the same resource, which this request may have stored).
                Err(e) if e.code().retry_safe() => {
                    if let Err(abort) = store.idempotency_abort(key.as_str(), &owner).await {
                        tracing::warn!(error = %abort, "could not release an idempotency key; it expires by itself");
                    }
                    return Err(e);
                }
                // A definite answer (MSP refused the order, say): replay it like a success.
                Err(e) => {
                    let stored = StoredResponse {
                        status: e.status().as_u16(),
                        body: e.body().to_string(),
                    };
                    save(state, key, &owner, &stored).await;
                    return Err(e);
                }
            };
            save(state, key, &owner, &stored).await;
            Ok(respond(stored))
        }
        IdempotencyBegin::InFlight {
            fingerprint: theirs,
        } => {
            if theirs != fingerprint {
                return Err(mismatch());
            }
            Err(ApiError::new(
                ErrorCode::IdempotencyKeyInUse,
                "A request with this Idempotency-Key is still being processed: wait for it, then retry to get its stored result.",
            )
            .with_param(HEADER))
        }
        IdempotencyBegin::Completed {
            fingerprint: theirs,
            response,
        } => {
            if theirs != fingerprint {
                return Err(mismatch());
            }
            Ok(replay(response))
        }
    }
}

async fn save(state: &AppState, key: &IdempotencyKey, owner: &str, response: &StoredResponse) {
    if let Err(e) = state
        .flows
        .store
        .idempotency_complete(key.as_str(), owner, response)
        .await
    {
        // The checkout itself is stored; only the replay record is missing, and a retry then
        // gets 409 until the in-flight marker expires rather than a second MSP order.
        tracing::error!(error = %e, "could not store the idempotent response");
    }
}

fn mismatch() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyKeyReused,
        "This Idempotency-Key was used with a different request body: use a new key for a new request.",
    )
    .with_param(HEADER)
}

/// The stored answer again, marked as a replay.
fn replay(stored: StoredResponse) -> HttpResponse {
    let mut res = respond(stored);
    res.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    res
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use actix_web::body::MessageBody;
    use actix_web::http::StatusCode;

    use super::*;
    use secrecy::SecretString;

    use crate::access::{FingerprintKey, MerchantKeys};
    use crate::clock::SystemClock;
    use crate::configuration::Settings;
    use crate::flows::{Context, FlowSettings};
    use crate::psp::multisafepay::MultiSafepayClient;
    use crate::store::memory::MemoryStore;

    fn state() -> AppState {
        let settings = Settings::default();
        let secret = SecretString::from("test secret");
        let flows = Context {
            store: Arc::new(MemoryStore::new(settings.store_ttls())),
            psp: MultiSafepayClient::new(
                "http://127.0.0.1:9",
                secret.clone(),
                Duration::from_secs(1),
                Duration::from_secs(1),
            )
            .unwrap(),
            clock: Arc::new(SystemClock),
            settings: FlowSettings::new(&settings, "http://gateway.test".into()),
            outbox: Default::default(),
            syncs: Default::default(),
        };
        AppState {
            flows: Arc::new(flows),
            metrics: crate::metrics::handle(),
            merchant_keys: MerchantKeys::new(&[], 1),
            fingerprint_key: FingerprintKey::derive(&secret),
            browser_limit: crate::access::KeylessLimit::new(0),
            notification_limit: crate::access::KeylessLimit::new(0),
            webhook_guard: Arc::new(crate::webhooks::address::AddressGuard::new(
                &settings.webhooks,
                None,
            )),
            settings,
        }
    }

    fn created() -> StoredResponse {
        StoredResponse {
            status: 201,
            body: r#"{"id":"chk_1"}"#.into(),
        }
    }

    async fn body_of(res: HttpResponse) -> String {
        let bytes = res.into_body().try_into_bytes().unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[actix_web::test]
    async fn a_retry_safe_failure_frees_the_key_for_the_retry() {
        let state = state();
        let key = IdempotencyKey::parse("k-1").unwrap();
        let err = run_once(&state, &key, "fp", None, |_| async {
            Err(ApiError::store_unavailable(anyhow::anyhow!("down")))
        })
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ServiceUnavailable);

        let res = run_once(&state, &key, "fp", None, |_| async { Ok(created()) })
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert!(res.headers().get(REPLAYED).is_none());
        assert_eq!(body_of(res).await, created().body);
    }

    #[actix_web::test]
    async fn the_retry_after_a_retry_safe_failure_goes_on_with_the_same_resource() {
        let state = state();
        let key = IdempotencyKey::parse("k-4").unwrap();
        run_once(&state, &key, "fp", Some("re-first"), |begun| async move {
            assert!(!begun.released && !begun.resumed);
            Err(ApiError::store_unavailable(anyhow::anyhow!("down")))
        })
        .await
        .unwrap_err();
        // The retry records an id of its own, but works on the first one, which the failed
        // request may have written after all.
        let res = run_once(&state, &key, "fp", Some("re-second"), |begun| async move {
            assert_eq!(
                begun,
                Begun {
                    resource: Some("re-first".into()),
                    resumed: false,
                    released: true,
                }
            );
            Ok(created())
        })
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let replay = run_once(&state, &key, "fp", Some("re-third"), |_| async {
            panic!("answered already")
        })
        .await
        .unwrap();
        assert!(replay.headers().get(REPLAYED).is_some());
        // A different body is still a different request.
        let other = run_once(&state, &key, "other", Some("re-fourth"), |_| async {
            panic!("not this body's key")
        })
        .await
        .unwrap_err();
        assert_eq!(other.code(), ErrorCode::IdempotencyKeyReused);
    }

    #[actix_web::test]
    async fn a_resumed_request_that_fails_keeps_the_claim_and_its_resource() {
        let state = state();
        let key = IdempotencyKey::parse("k-3").unwrap();
        // A request that claimed the key long ago and never finished.
        let lapsed = Claim {
            fingerprint: "fp",
            resource: Some("chk-first"),
            now_ms: 0,
            in_flight_ms: Some(1),
        };
        state
            .flows
            .store
            .idempotency_claim(key.as_str(), &lapsed)
            .await
            .unwrap();
        let err = run_once(&state, &key, "fp", Some("chk-second"), |begun| async move {
            assert_eq!(
                begun,
                Begun {
                    resource: Some("chk-first".into()),
                    resumed: true,
                    released: false,
                }
            );
            Err(ApiError::store_unavailable(anyhow::anyhow!("down")))
        })
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
        // Not freed: a retry now must not start another checkout under a new id.
        let again = run_once(&state, &key, "fp", Some("chk-third"), |_| async {
            panic!("the key is still claimed")
        })
        .await
        .unwrap_err();
        assert_eq!(again.code(), ErrorCode::IdempotencyKeyInUse);
    }

    #[actix_web::test]
    async fn a_final_failure_is_replayed_without_running_again() {
        let state = state();
        let key = IdempotencyKey::parse("k-2").unwrap();
        let err = run_once(&state, &key, "fp", None, |_| async {
            Err(ApiError::new(ErrorCode::PspRejected, "refused"))
        })
        .await
        .unwrap_err();
        assert!(!err.code().retry_safe());

        let res = run_once(&state, &key, "fp", None, |_| async {
            panic!("a replay must not run the request again")
        })
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(res.headers().get(REPLAYED).unwrap(), "true");
        assert_eq!(body_of(res).await, err.body().to_string());
    }
}
