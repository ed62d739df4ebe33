//! `server.body_timeout_ms`: a request whose body has not fully arrived that long
//! after its headers is answered 408 and its connection is closed, on every endpoint, keyless
//! ones included.
//!
//! actix-web's `client_request_timeout` covers the headers only: once they are in, a body that
//! trickles in (a byte every few seconds) would hold the connection, and a worker's attention,
//! for as long as the sender likes. [`cut_slow_bodies`] wraps every request's payload in a stream
//! that ends with an error at the deadline; whatever was reading the body (a JSON, form or bytes
//! extractor) fails, and the middleware replaces that failure with a 408 that closes the
//! connection. A handler that never reads its body answers as usual, and actix closes a
//! connection whose body was left unread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpResponse, ResponseError as _};
use futures_util::Stream;

use crate::errors::{ApiError, ErrorCode};

/// The deadline, as app data of the app that [`cut_slow_bodies`] wraps.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Middleware (`from_fn(cut_slow_bodies)`), on the whole app: see the module's doc.
pub async fn cut_slow_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(BodyTimeout(timeout)) = req.app_data::<BodyTimeout>().copied() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let timed_out = Arc::new(AtomicBool::new(false));
    let (http_req, payload) = req.into_parts();
    let deadline = Deadline {
        inner: payload,
        sleep: Box::pin(tokio::time::sleep(timeout)),
        timed_out: timed_out.clone(),
        finished: false,
    };
    let req = ServiceRequest::from_parts(
        http_req,
        Payload::Stream {
            payload: Box::pin(deadline),
        },
    );
    let answer = next.call(req).await;
    if !timed_out.load(Ordering::Acquire) {
        return Ok(answer?.map_into_boxed_body());
    }
    let req = match &answer {
        Ok(res) => res.request().clone(),
        Err(_) => return Err(too_slow_error()),
    };
    tracing::info!(
        timeout_ms = timeout.as_millis() as u64,
        "request body did not arrive in time: 408, connection closed"
    );
    let mut res = too_slow(req.path());
    res.head_mut().set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(req, res))
}

/// The 408 in the caller's language: an HTML page on the shopper's paths, the API's JSON
/// error elsewhere.
fn too_slow(path: &str) -> HttpResponse {
    if crate::browser::is_browser_path(path) {
        crate::browser::respond::error_response(
            StatusCode::REQUEST_TIMEOUT,
            "This took too long",
            "Your browser did not finish sending the form in time. Please go back and try again.",
        )
    } else {
        too_slow_api_error().error_response()
    }
}

fn too_slow_api_error() -> ApiError {
    ApiError::new(
        ErrorCode::RequestTimeout,
        "The request body did not arrive within the server's body timeout: send the whole body at once, then retry (nothing was done).",
    )
}

fn too_slow_error() -> Error {
    actix_web::error::InternalError::from_response(
        "request body timeout",
        too_slow_api_error().error_response(),
    )
    .into()
}

/// The request's payload, ending with an error once the deadline has passed. After the body
/// has ended, the deadline no longer matters (a slow handler is not a slow body).
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
    finished: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.finished = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
            Poll::Pending => {}
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.finished = true;
                this.timed_out.store(true, Ordering::Release);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
