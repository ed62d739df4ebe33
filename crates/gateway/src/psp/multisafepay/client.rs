//! The MultiSafepay client: one method per MSP operation, decided on MSP's `success` and
//! `error_code` rather than the HTTP status (MSP's statuses are inconsistent: reference §3.6),
//! except that 5xx, timeouts and connection errors mean "outcome unknown".

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::value::RawValue;

use super::status::{
    ERROR_CANNOT_REFUND, ERROR_DECLINED, ERROR_INVALID_ORDER_ID, SAME_AMOUNT_WINDOW,
    failure_for_cancel_error, failure_for_capture_error, failure_for_error,
    failure_for_refund_cancel_error, failure_for_refund_error, failure_for_same_amount_refund,
    failure_for_unknown_order,
};
use super::{convert, wire};

mod recurring;
use crate::domain::checkout::Failure;
use crate::psp::{
    Canceled, CaptureAccepted, CaptureRequest, CreateOrder, PspError, PspOrder, RefundAccepted,
    RefundRequest,
};

/// The MSP JSON API over reqwest (rustls), with connect and total timeouts on every call.
#[derive(Clone)]
pub struct MultiSafepayClient {
    /// The client of the background tasks; web workers use one of their own ([`Self::http`]).
    http: reqwest::Client,
    recipe: Arc<Recipe>,
    /// e.g. `https://testapi.multisafepay.com/v1/json`; paths are appended as segments.
    base_url: url::Url,
    /// Where each call is recorded for the operator console (its checkout's log, the hour's
    /// latency); none in tests of the client alone.
    recorder: Option<Arc<crate::activity::Recorder>>,
}

/// How the HTTP client is made, so that each web worker can make its own.
struct Recipe {
    headers: HeaderMap,
    connect_timeout: Duration,
    timeout: Duration,
    /// Its key for [`crate::runtime::worker_own`].
    id: u64,
}

impl Recipe {
    fn build(&self) -> reqwest::Result<reqwest::Client> {
        // Redirects are not followed: MSP's API answers without them, and a followed 307 would
        // carry the card data, and the `api_key` header (reqwest drops only the headers it
        // knows as secret), to wherever it points.
        reqwest::Client::builder()
            .default_headers(self.headers.clone())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
    }
}

impl std::fmt::Debug for MultiSafepayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiSafepayClient")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl MultiSafepayClient {
    /// The key goes into a default `api_key` header marked sensitive: never into a URL, so no
    /// logged URL can carry it.
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, PspError> {
        let base_url = url::Url::parse(base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                PspError::unexpected(format!(
                    "multisafepay.base_url `{base_url}` is not an absolute http(s) URL"
                ))
            })?;
        if base_url.query().is_some() {
            return Err(PspError::unexpected(
                "multisafepay.base_url must not carry a query string (the API key travels in a header)",
            ));
        }
        let mut key = HeaderValue::from_str(api_key.expose_secret().trim()).map_err(|_| {
            PspError::unexpected(
                "multisafepay.api_key holds characters an HTTP header cannot carry",
            )
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("api_key", key);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let recipe = Recipe {
            headers,
            connect_timeout,
            timeout,
            id: crate::runtime::owner_id(),
        };
        let http = recipe
            .build()
            .map_err(|e| PspError::unexpected(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            recipe: Arc::new(recipe),
            base_url,
            recorder: None,
        })
    }

    /// The same client, recording every call it makes through `recorder`.
    pub fn with_recorder(mut self, recorder: Arc<crate::activity::Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// The recorder its calls go to, if any.
    pub fn recorder(&self) -> Option<&crate::activity::Recorder> {
        self.recorder.as_deref()
    }

    /// [`Self::recorder`], shared.
    pub fn recorder_arc(&self) -> Option<Arc<crate::activity::Recorder>> {
        self.recorder.clone()
    }

    /// The HTTP client to call MSP with from here: on a web worker, the worker's own.
    ///
    /// A pooled connection is driven by a task on the runtime that opened it; shared by the
    /// workers, a request often goes out over another worker's connection, and every request
    /// and answer then wakes that worker's thread as well (as with Redis: see
    /// `store::redis::Connection::local`). A client per worker keeps each connection on the
    /// thread that uses it.
    pub(super) fn http(&self) -> reqwest::Client {
        // It was built once with this recipe; should building fail now, share.
        crate::runtime::worker_own(self.recipe.id, || self.recipe.build().ok())
            .unwrap_or_else(|| self.http.clone())
    }

    /// `POST /orders`: a direct card order. `Declined` is error 1024; `Unreachable` means MSP
    /// may have created the order: sync it later, never report it failed.
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order.id))]
    pub async fn create_order(&self, order: &CreateOrder<'_>) -> Result<PspOrder, PspError> {
        let body = convert::order_request(order);
        // `.json()` sets `content-type: application/json`.
        let request = self.http().post(self.url(&["orders"])).json(&body);
        // Every refusal of a saved card's order is a failed payment.
        let refused = match order.checkout.saved() {
            Some(_) => recurring::token_order_refused,
            None => order_refused,
        };
        self.call("create_order", Some(order.id.as_str()), request, refused)
            .await
    }

    /// `GET /orders/{id}`: the order's current state. `NotFound` for error 1006.
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %id))]
    pub async fn get_order(&self, id: &str) -> Result<PspOrder, PspError> {
        let request = self.http().get(self.url(&["orders", id]));
        self.call("get_order", Some(id), request, lookup_refused)
            .await
    }

    /// `POST /orders/{order_id}/refunds`. `Rejected` is MSP refusing it (error 1034: over what
    /// is left, balance, a same-amount refund within 5 minutes), with the refund's failure;
    /// `Unreachable` means MSP may have made the refund: look for its `refund_order_id` under
    /// the order before sending it again. An amount below 1 is never sent (`Unexpected`).
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(order_id = %refund.order_id, refund_order_id = %refund.refund_order_id)
    )]
    pub async fn refund(&self, refund: &RefundRequest<'_>) -> Result<RefundAccepted, PspError> {
        let body = convert::refund_request(refund);
        let at = ["orders", refund.order_id, "refunds"];
        self.post("refund", refund.order_id, &at, body, refund_refused)
            .await
            .map_err(|e| same_amount_refused(e, refund))
    }

    /// `PATCH /orders/{order_id}/refunds/{refund_id}` `{"status": "void"}`: cancels a refund
    /// MSP has not sent yet (`reserved`); `refund_transaction_id` is MSP's id of the refund
    /// transaction. `Rejected` carries MSP's code when it will not (the refund has moved on);
    /// `Unreachable` means it may have been canceled: read the order.
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id, refund_id = %refund_transaction_id))]
    pub async fn cancel_refund(
        &self,
        order_id: &str,
        refund_transaction_id: &str,
    ) -> Result<(), PspError> {
        let url = self.url(&["orders", order_id, "refunds", refund_transaction_id]);
        let request = self.http().patch(url).json(&convert::refund_void());
        self.call(
            "cancel_refund",
            Some(order_id),
            request,
            refund_cancel_refused,
        )
        .await
    }

    /// `PATCH /orders/{order_id}` `{"status": "cancelled", "exclude_order": true}`: cancels an
    /// order that is not finished (3-D Secure pending, or held by MSP). `Rejected`
    /// (`checkout_not_cancelable`) when MSP will not, typically because the order has moved on;
    /// `Unreachable` means it may have been cancelled: read the order.
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
    pub async fn cancel_order(&self, order_id: &str) -> Result<Canceled, PspError> {
        let url = self.url(&["orders", order_id]);
        let request = self.http().patch(url).json(&convert::order_cancel());
        self.call("cancel_order", Some(order_id), request, cancel_refused)
            .await
            .map(|()| convert::canceled())
    }

    /// `PATCH /capture/{order_id}` `{"status": "cancelled", "reason": …}`: releases an
    /// authorisation that was not captured (a manual-capture order). Errors as
    /// [`Self::cancel_order`].
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
    pub async fn cancel_authorization(
        &self,
        order_id: &str,
        reason: Option<&str>,
    ) -> Result<Canceled, PspError> {
        let url = self.url(&["capture", order_id]);
        let request = self
            .http()
            .patch(url)
            .json(&convert::authorization_cancel(reason));
        self.call(
            "cancel_authorization",
            Some(order_id),
            request,
            cancel_refused,
        )
        .await
        .map(|()| convert::canceled())
    }

    /// `POST /orders/{order_id}/capture` `{"amount", "new_order_id", "new_order_status":
    /// "completed"}`: collects `amount` of an authorisation. `Rejected`
    /// (`checkout_not_capturable`) when MSP will not (the authorisation expired, was cancelled
    /// or captured, or the amount is more than it); `Unreachable` means MSP may have captured
    /// it: read the order before capturing again. An amount below 1 is never sent (`Unexpected`).
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %req.order_id))]
    pub async fn capture(&self, req: &CaptureRequest<'_>) -> Result<CaptureAccepted, PspError> {
        let body = convert::capture_request(req);
        let at = ["orders", req.order_id, "capture"];
        self.post("capture", req.order_id, &at, body, capture_refused)
            .await
    }

    /// `POST /orders/{order_id}/files` (MSP's `challengeChargeback`) `{"type", "base64",
    /// "description", "name"}`: one evidence file for the order's dispute.
    /// `Rejected` when MSP will not take it; `Unreachable` means it may have it.
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order_id))]
    pub async fn upload_evidence(
        &self,
        order_id: &str,
        file: &crate::psp::EvidenceFile<'_>,
    ) -> Result<(), PspError> {
        let body = serde_json::json!({
            "type": file.kind,
            "base64": file.base64,
            "description": file.description,
            "name": file.name,
        });
        let at = ["orders", order_id, "files"];
        self.post("upload_evidence", order_id, &at, Ok(body), order_refused)
            .await
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment.
    pub(super) fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// POSTs `body` to `segments` through [`Self::call`]; a body that could not be made is
    /// logged and returned, and nothing is sent.
    async fn post<T: Answer>(
        &self,
        operation: &'static str,
        order_id: &str,
        segments: &[&str],
        body: Result<impl serde::Serialize, PspError>,
        refused: fn(i64, String) -> PspError,
    ) -> Result<T, PspError> {
        let body = body.inspect_err(|e| {
            tracing::error!(error.message = %e, operation, "request not sent to MultiSafepay");
        })?;
        let request = self.http().post(self.url(segments)).json(&body);
        self.call(operation, Some(order_id), request, refused).await
    }

    /// Sends `request`, reads MSP's answer as `T` (a refusal through `refused`), and records
    /// the call's duration, outcome and result (in the metrics, the log, and the console's log
    /// of order `order_id`).
    pub(super) async fn call<T: Answer>(
        &self,
        operation: &'static str,
        order_id: Option<&str>,
        request: reqwest::RequestBuilder,
        refused: fn(i64, String) -> PspError,
    ) -> Result<T, PspError> {
        // The merchant's request's trace goes on to MSP (W3C Trace Context); background
        // work (the reconciler, the deliverer) has none to carry.
        let request = match crate::request_id::current() {
            Some(context) => request.header("traceparent", context.traceparent_for_call()),
            None => request,
        };
        let at = self.recorder.as_ref().map(|r| r.now());
        let started = Instant::now();
        let mut seen = Seen::default();
        let result = exchange::<T>(request, refused, &mut seen).await;
        let took = started.elapsed();
        metrics::histogram!(crate::metrics::PSP_DURATION, "operation" => operation)
            .record(took.as_secs_f64());
        metrics::counter!(
            crate::metrics::PSP_REQUESTS,
            "operation" => operation,
            "outcome" => outcome_label(&result),
        )
        .increment(1);
        match &result {
            Ok(answer) => answer.log(),
            Err(e) => tracing::warn!(error.message = %e, "MultiSafepay call did not succeed"),
        }
        if let (Some(recorder), Some(at)) = (&self.recorder, at) {
            recorder
                .msp_call(crate::activity::CallFacts {
                    order_id,
                    operation,
                    at,
                    http_status: seen.http_status,
                    msp_error_code: seen.msp_error_code,
                    duration: took,
                    outcome: seen.outcome(result.is_ok()),
                })
                .await;
        }
        result
    }
}

/// A POST notification's body: the bare order object (no envelope). Verify its signature over
/// these exact bytes before calling this.
pub fn parse_notification(body: &[u8]) -> Result<PspOrder, PspError> {
    let order: wire::Order = serde_json::from_slice(body).map_err(|e| PspError::Unexpected {
        detail: format!("the notification is not an order object: {e}"),
        source: Some(e),
    })?;
    convert::psp_order(order)
}

/// What [`exchange`] saw of a call, for the console's log: never the body.
#[derive(Debug, Default)]
struct Seen {
    http_status: Option<u16>,
    msp_error_code: Option<i64>,
    /// No complete answer arrived: timed out (`Some(true)`) or failed otherwise.
    no_answer: Option<bool>,
}

impl Seen {
    fn outcome(&self, ok: bool) -> crate::activity::CallOutcome {
        use crate::activity::CallOutcome;
        match (ok, self.no_answer) {
            (true, _) => CallOutcome::Ok,
            (false, Some(true)) => CallOutcome::Timeout,
            (false, Some(false)) => CallOutcome::Unreachable,
            (false, None) => CallOutcome::MspError,
        }
    }
}

/// What an operation makes of the `data` of a successful answer, and what it logs of it.
pub(super) trait Answer: Sized + std::fmt::Debug {
    fn read(data: Option<&RawValue>) -> Result<Self, PspError>;

    /// By default the whole answer: the ids MSP gave.
    fn log(&self) {
        tracing::info!(psp.answer = ?self, "MultiSafepay agreed");
    }
}

impl Answer for PspOrder {
    fn read(data: Option<&RawValue>) -> Result<Self, PspError> {
        let data = data.ok_or_else(|| PspError::unexpected("success without data"))?;
        let order: wire::Order =
            serde_json::from_str(data.get()).map_err(|e| PspError::Unexpected {
                detail: format!("data is not an order object: {e}"),
                source: Some(e),
            })?;
        convert::psp_order(order)
    }

    /// At debug: every order answer is a create, a refresh or a reconciliation, whose outcome
    /// the transition line (with MSP's status) or the access line says at info already (one
    /// line per request and one per transition).
    fn log(&self) {
        tracing::debug!(
            psp.status = %self.status_text,
            psp.reason_code = %self.reason_code,
            "MultiSafepay answered"
        );
    }
}

/// `data` of a yes read as `T`: MSP said yes, so `data` that is no object (none, `[]`, `null`)
/// does not undo that and reads as `T::default()`; an object that is not `T` is unusable.
fn data_or_default<T>(data: Option<&RawValue>, what: &str) -> Result<T, PspError>
where
    T: serde::de::DeserializeOwned + Default,
{
    match data {
        // A raw value holds exactly one JSON value, without surrounding whitespace.
        Some(data) if data.get().starts_with('{') => {
            serde_json::from_str(data.get()).map_err(|e| PspError::Unexpected {
                detail: format!("data is not {what}: {e}"),
                source: Some(e),
            })
        }
        _ => Ok(T::default()),
    }
}

impl Answer for RefundAccepted {
    /// Without a refund id the refund is found under the order by its `refund_order_id` all
    /// the same.
    fn read(data: Option<&RawValue>) -> Result<Self, PspError> {
        data_or_default(data, "a refund answer").map(convert::refund_accepted)
    }

    fn log(&self) {
        tracing::info!(
            psp.refund_id = self.transaction_id.as_deref().unwrap_or_default(),
            "MultiSafepay accepted the refund"
        );
    }
}

impl Answer for CaptureAccepted {
    /// MSP said yes: an answer without ids is a capture all the same.
    fn read(data: Option<&RawValue>) -> Result<Self, PspError> {
        data_or_default(data, "a capture answer").map(convert::capture_accepted)
    }
}

/// A plain yes (MSP answers `data: {}`).
impl Answer for () {
    fn read(_data: Option<&RawValue>) -> Result<Self, PspError> {
        Ok(())
    }

    fn log(&self) {
        tracing::info!("MultiSafepay agreed");
    }
}

/// MSP's envelope: `success` decides, not the HTTP status (reference §3.6), except that a 5xx
/// or no complete answer at all leaves the outcome unknown.
async fn exchange<T: Answer>(
    request: reqwest::RequestBuilder,
    refused: fn(i64, String) -> PspError,
    seen: &mut Seen,
) -> Result<T, PspError> {
    let mut no_answer = |e: reqwest::Error| {
        seen.no_answer = Some(e.is_timeout());
        unreachable(e)
    };
    let response = request.send().await.map_err(&mut no_answer)?;
    let status = response.status();
    // Reading the body can time out too: still "outcome unknown".
    let body = response.bytes().await.map_err(&mut no_answer)?;
    seen.http_status = Some(status.as_u16());
    if status.is_server_error() {
        return Err(PspError::Unreachable {
            detail: format!("HTTP {}", status.as_u16()),
            source: None,
        });
    }
    if status.is_redirection() {
        return Err(PspError::unexpected(format!(
            "HTTP {}, a redirect, which is not followed: check multisafepay.base_url (MSP's API \
             answers without redirects)",
            status.as_u16()
        )));
    }
    let envelope: wire::Envelope =
        serde_json::from_slice(&body).map_err(|e| PspError::Unexpected {
            detail: format!(
                "HTTP {} with a body that is not MSP's JSON envelope: {e}",
                status.as_u16()
            ),
            source: Some(e),
        })?;
    if envelope.success {
        return T::read(envelope.data.as_deref());
    }
    seen.msp_error_code = envelope.error_code;
    match envelope.error_code {
        Some(error_code) => Err(refused(error_code, envelope.error_info.unwrap_or_default())),
        None => Err(PspError::unexpected(format!(
            "HTTP {}: success false without an error_code",
            status.as_u16()
        ))),
    }
}

/// MSP refusing an order: error 1024 is a declined card, anything else a rejected request.
fn order_refused(error_code: i64, error_info: String) -> PspError {
    let failure = failure_for_error(error_code, &error_info);
    if error_code == ERROR_DECLINED {
        PspError::Declined {
            error_code,
            error_info,
            failure,
        }
    } else {
        PspError::Rejected {
            error_code,
            error_info,
            failure,
        }
    }
}

/// As [`order_refused`], except that error 1006 on a lookup is an order MSP does not have.
fn lookup_refused(error_code: i64, error_info: String) -> PspError {
    if error_code == ERROR_INVALID_ORDER_ID {
        PspError::NotFound {
            failure: failure_for_unknown_order(),
        }
    } else {
        order_refused(error_code, error_info)
    }
}

/// MSP refusing a refund: whatever the code, the refund failed.
fn refund_refused(error_code: i64, error_info: String) -> PspError {
    rejected(error_code, error_info, failure_for_refund_error)
}

/// MSP's error 1034 on a refund requested within its same-amount window of an earlier refund of
/// the same amount: the failure says that rule first, and when it lifts.
fn same_amount_refused(e: PspError, refund: &RefundRequest<'_>) -> PspError {
    match (e, refund.same_amount_requested_at) {
        (
            PspError::Rejected {
                error_code: ERROR_CANNOT_REFUND,
                error_info,
                ..
            },
            Some(earlier),
        ) if refund.requested_at - earlier < SAME_AMOUNT_WINDOW => PspError::Rejected {
            error_code: ERROR_CANNOT_REFUND,
            failure: failure_for_same_amount_refund(earlier, &error_info),
            error_info,
        },
        (e, _) => e,
    }
}

/// MSP refusing to cancel a refund: the refund stays as MSP has it.
fn refund_cancel_refused(error_code: i64, error_info: String) -> PspError {
    rejected(error_code, error_info, failure_for_refund_cancel_error)
}

/// MSP refusing to cancel an order or an authorisation: the payment stays as MSP has it.
fn cancel_refused(error_code: i64, error_info: String) -> PspError {
    rejected(error_code, error_info, failure_for_cancel_error)
}

/// MSP refusing a capture: the authorisation stays as MSP has it.
fn capture_refused(error_code: i64, error_info: String) -> PspError {
    rejected(error_code, error_info, failure_for_capture_error)
}

/// A refusal whatever the code, with the failure `failure_for` makes of it.
fn rejected(
    error_code: i64,
    error_info: String,
    failure_for: fn(i64, &str) -> Failure,
) -> PspError {
    PspError::Rejected {
        error_code,
        failure: failure_for(error_code, &error_info),
        error_info,
    }
}

fn unreachable(e: reqwest::Error) -> PspError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    // `without_url`: the URL holds no secret, but the message is enough.
    let e = e.without_url();
    PspError::Unreachable {
        detail: format!("{what}: {e}"),
        source: Some(e),
    }
}

fn outcome_label<T>(result: &Result<T, PspError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(PspError::Declined { .. }) => "declined",
        Err(PspError::Rejected { .. }) => "rejected",
        Err(PspError::NotFound { .. }) => "not_found",
        Err(PspError::Unreachable { .. }) => "unreachable",
        Err(PspError::Unexpected { .. }) => "unexpected",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{
        body_json, body_partial_json, header, method, path, query_param_is_missing,
    };
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::configuration::NotificationMethod;
    use crate::domain::checkout::{CheckoutId, Failure};
    use crate::domain::new_checkout::tests::{CVC, PAN, example};
    use crate::psp::PaymentStatus;

    const KEY: &str = "test-site-key";
    const ID: &str = "chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b";

    fn client(server: &MockServer, timeout: Duration) -> MultiSafepayClient {
        MultiSafepayClient::new(
            &format!("{}/v1/json", server.uri()),
            SecretString::from(KEY),
            Duration::from_millis(2_000),
            timeout,
        )
        .unwrap()
    }

    async fn create(server: &MockServer, timeout: Duration) -> Result<PspOrder, PspError> {
        let id = CheckoutId::parse(ID).unwrap();
        let checkout = example();
        let order = CreateOrder {
            id: &id,
            checkout: &checkout,
            notification_url: "https://gw.example/notifications/multisafepay".into(),
            notification_method: NotificationMethod::Post,
            redirect_url: format!("https://gw.example/return/{ID}"),
            cancel_url: format!("https://gw.example/cancel/{ID}"),
        };
        client(server, timeout).create_order(&order).await
    }

    fn initialized() -> serde_json::Value {
        json!({"success": true, "data": {
            "order_id": ID, "transaction_id": 4051823, "status": "initialized",
            "financial_status": "initialized", "reason": "3D Secure Authorization", "reason_code": "",
            "payment_url": "https://testpayv2.example/connect/abc/?lang=nl_NL",
            "customer_verification": {"type": "form", "html": "<html><form></form></html>"},
            "payment_details": {"type": "VISA", "last4": "1111", "card_expiry_date": 3012}
        }})
    }

    #[tokio::test]
    async fn create_order_posts_a_direct_card_order_with_the_key_in_a_header() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/json/orders"))
            .and(header("api_key", KEY))
            .and(header("accept", "application/json"))
            .and(header("content-type", "application/json"))
            .and(query_param_is_missing("api_key"))
            .and(body_partial_json(json!({
                "type": "direct",
                "gateway": "CREDITCARD",
                "order_id": ID,
                "amount": 3495,
                "currency": "EUR",
                "payment_options": {"notification_method": "POST"},
                "gateway_info": {"card_number": PAN, "card_cvc": CVC, "card_expiry_date": "3012"}
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(initialized()))
            .expect(1)
            .mount(&server)
            .await;

        let order = create(&server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(order.order_id, ID);
        assert_eq!(order.transaction_id.as_deref(), Some("4051823"));
        assert_eq!(order.status, PaymentStatus::AwaitingShopper);
        assert_eq!(
            order.payment_url.as_deref(),
            Some("https://testpayv2.example/connect/abc/?lang=nl_NL")
        );
        assert_eq!(
            order.form_html.as_deref(),
            Some("<html><form></form></html>")
        );

        // And no key anywhere in the URL, whatever the matcher above allows.
        let requests = server.received_requests().await.unwrap();
        assert!(!requests[0].url.as_str().contains(KEY));
    }

    /// Runs `f` under the gateway's own subscriber at every level and returns what it logged.
    async fn logged<F: std::future::Future>(f: F) -> (F::Output, String) {
        use tracing::instrument::WithSubscriber;
        let captured = crate::telemetry::capture::Captured::default();
        let output = f.with_subscriber(captured.subscriber()).await;
        (output, captured.text())
    }

    #[tokio::test]
    async fn logs_name_the_order_but_never_the_card() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(initialized()))
            .expect(1)
            .mount(&server)
            .await;
        let (created, logs) = logged(create(&server, Duration::from_secs(5))).await;
        created.unwrap();
        assert!(logs.contains(ID), "the span carries the order id: {logs}");
        assert!(logs.contains("initialized"), "{logs}");
        assert!(!logs.contains(PAN), "{logs}");
        assert!(!logs.contains(&format!("\"{CVC}\"")), "{logs}");
    }

    #[tokio::test]
    async fn refunds_and_chargebacks_come_with_the_order_and_a_bad_entry_is_logged() {
        let related = json!([
            {"type": "refund", "refund_order_id": "re_1", "transaction_id": 9001, "amount": 500,
             "status": "completed"},
            {"type": "refund", "refund_order_id": "re_2", "amount": "ten", "status": "reserved"},
            {"type": "chargeback", "transaction_id": 9100, "amount": 3495, "status": "completed"}
        ]);
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/json/orders/{ID}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"success": true, "data": {
                    "order_id": ID, "transaction_id": 4051823, "status": "void",
                    "related_transactions": related
                }}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let client = client(&server, Duration::from_secs(5));
        let (order, logs) = logged(client.get_order(ID)).await;
        let order = order.unwrap();
        let refunds: Vec<_> = order
            .refunds
            .iter()
            .map(|r| (r.refund_order_id.as_deref(), r.amount, r.status))
            .collect();
        assert_eq!(
            refunds,
            [(
                Some("re_1"),
                Some(500),
                crate::psp::RefundProgress::Completed
            )]
        );
        assert!(order.charged_back);
        let warning = logs
            .lines()
            .find(|l| l.contains("related_transactions"))
            .unwrap_or_else(|| panic!("no warning: {logs}"));
        assert!(
            warning.contains("WARN") && warning.contains(ID) && warning.contains("amount"),
            "{warning}"
        );

        // A POST notification is the same order object without the envelope.
        let body = json!({"order_id": ID, "status": "void", "related_transactions": related});
        let notified = parse_notification(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            (notified.refunds, notified.charged_back),
            (order.refunds, true)
        );
    }

    #[test]
    fn create_order_debug_masks_the_card() {
        let id = CheckoutId::parse(ID).unwrap();
        let checkout = example();
        let order = CreateOrder {
            id: &id,
            checkout: &checkout,
            notification_url: String::new(),
            notification_method: NotificationMethod::Get,
            redirect_url: String::new(),
            cancel_url: String::new(),
        };
        let shown = format!("{order:?}");
        assert!(!shown.contains(PAN) && !shown.contains(CVC), "{shown}");
    }

    #[tokio::test]
    async fn a_5xx_is_unreachable_even_with_an_error_body() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_json(
                json!({"success": false, "error_code": 1024, "error_info": "declined"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let err = create(&server, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            matches!(err, PspError::Unreachable { ref detail, .. } if detail.contains("500")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_timeout_is_unreachable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(initialized())
                    .set_delay(Duration::from_secs(3)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let started = Instant::now();
        let err = create(&server, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PspError::Unreachable { ref detail, .. } if detail.contains("timed out")),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the timeout applied"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        // Bind then drop a listener: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = MultiSafepayClient::new(
            &format!("http://127.0.0.1:{port}/v1/json"),
            SecretString::from(KEY),
            Duration::from_millis(500),
            Duration::from_secs(2),
        )
        .unwrap();
        let err = client.get_order(ID).await.unwrap_err();
        assert!(matches!(err, PspError::Unreachable { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_malformed_body_is_unexpected() {
        for body in [
            "<html>Bad gateway</html>",
            r#"{"success": true}"#,
            r#"{"success": true, "data": {"status": "completed"}}"#,
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(200).set_body_string(body))
                .expect(1)
                .mount(&server)
                .await;
            let err = create(&server, Duration::from_secs(5)).await.unwrap_err();
            assert!(
                matches!(err, PspError::Unexpected { .. }),
                "{body}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_with_the_card_and_the_key() {
        let elsewhere = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
            .expect(0)
            .named("the redirect's target")
            .mount(&elsewhere)
            .await;
        for code in [301, 302, 307, 308] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(code)
                        .insert_header("location", format!("{}/v1/json/orders", elsewhere.uri())),
                )
                .expect(1)
                .mount(&server)
                .await;
            let err = create(&server, Duration::from_secs(5)).await.unwrap_err();
            let PspError::Unexpected { ref detail, .. } = err else {
                panic!("{code}: {err:?}");
            };
            assert!(detail.contains("redirect") && detail.contains("multisafepay.base_url"));
        }
        // The create calls above have returned: had one followed its redirect, `elsewhere`
        // would have been asked by now; its `expect(0)` is checked as it drops.
    }

    #[tokio::test]
    async fn error_1024_is_declined_even_with_http_200() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"success": false, "data": {}, "error_code": 1024, "error_info": "declined"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let err = create(&server, Duration::from_secs(5)).await.unwrap_err();
        let PspError::Declined {
            error_code,
            error_info,
            failure,
        } = err
        else {
            panic!("not declined: {err:?}");
        };
        assert_eq!((error_code, error_info.as_str()), (1024, "declined"));
        assert_eq!(failure.code, "card_declined");
    }

    #[tokio::test]
    async fn other_errors_are_rejected_with_msp_code() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"success": false, "data": {}, "error_code": 1032, "error_info": "Invalid API key"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let err = create(&server, Duration::from_secs(5)).await.unwrap_err();
        let (error_code, error_info, failure) = rejected(err);
        assert_eq!((error_code, error_info.as_str()), (1032, "Invalid API key"));
        assert_eq!(failure.psp_reason_code, "1032");
    }

    #[tokio::test]
    async fn get_order_reads_the_order_and_1006_is_not_found() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/json/orders/{ID}")))
            .and(header("api_key", KEY))
            .and(query_param_is_missing("api_key"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"success": true, "data": {
                    "order_id": ID, "transaction_id": "4051823", "status": "declined",
                    "reason": "3DS Authentication Failed", "reason_code": "3001"
                }}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/json/orders/chk_unknown"))
            .respond_with(ResponseTemplate::new(404).set_body_json(
                json!({"success": false, "data": {}, "error_code": 1006, "error_info": "Invalid transaction ID"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let client = client(&server, Duration::from_secs(5));
        let order = client.get_order(ID).await.unwrap();
        assert_eq!(order.status, PaymentStatus::Declined);
        assert_eq!(order.failure.unwrap().code, "authentication_failed");
        match client.get_order("chk_unknown").await {
            Err(PspError::NotFound { failure }) => {
                assert_eq!(failure.code, "processing_error");
                assert_eq!(failure.psp_reason_code, "1006");
                assert!(
                    failure.message.contains("nothing was charged"),
                    "{failure:?}"
                );
            }
            other => panic!("not NotFound: {other:?}"),
        }
    }

    #[tokio::test]
    async fn order_ids_are_one_path_segment() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/json/orders/a%2Fb%3Fc"))
            .respond_with(ResponseTemplate::new(404).set_body_json(
                json!({"success": false, "error_code": 1006, "error_info": "Invalid transaction ID"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, Duration::from_secs(5))
            .get_order("a/b?c")
            .await;
        assert!(matches!(err, Err(PspError::NotFound { .. })));
    }

    /// On a web worker (a single-threaded runtime, as this test's), every operation goes out
    /// over the worker's own client, never over the shared one of the background tasks, whose
    /// connections another thread drives.
    #[tokio::test]
    async fn on_a_web_worker_every_call_goes_over_the_workers_own_client() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200).set_body_json(initialized()))
            .mount(&server)
            .await;
        let mut c = client(&server, Duration::from_secs(5));
        // The shared client marks what it sends.
        let mut marked = c.recipe.headers.clone();
        marked.insert("x-shared-client", HeaderValue::from_static("1"));
        c.http = reqwest::Client::builder()
            .default_headers(marked)
            .build()
            .unwrap();
        let id = CheckoutId::parse(ID).unwrap();
        let checkout = example();
        let order = CreateOrder {
            id: &id,
            checkout: &checkout,
            notification_url: "https://gw.example/notifications/multisafepay".into(),
            notification_method: NotificationMethod::Post,
            redirect_url: format!("https://gw.example/return/{ID}"),
            cancel_url: format!("https://gw.example/cancel/{ID}"),
        };
        // What MSP answers does not matter here, only which client asked.
        let _ = c.create_order(&order).await;
        let _ = c.get_order(ID).await;
        let _ = c.refund(&refund_of(1000)).await;
        let _ = c.cancel_refund(ID, "4051823").await;
        let _ = c.cancel_order(ID).await;
        let _ = c.cancel_authorization(ID, None).await;
        let _ = c.capture(&capture_of(3000)).await;
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 7, "one request per operation");
        for r in &requests {
            assert!(
                !r.headers.contains_key("x-shared-client"),
                "{} {} went over the shared client",
                r.method,
                r.url.path()
            );
        }
    }

    fn refund_of(amount: i64) -> RefundRequest<'static> {
        RefundRequest {
            order_id: ID,
            refund_order_id: "re_0190f5a2c3d47e8f9a0b1c2d3e4f5a6c",
            amount,
            currency: "EUR",
            description: Some("Returned T-shirt"),
            requested_at: chrono::DateTime::UNIX_EPOCH,
            same_amount_requested_at: None,
        }
    }

    #[tokio::test]
    async fn refund_posts_the_amount_to_the_order_and_reads_the_refund_id() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/v1/json/orders/{ID}/refunds")))
            .and(header("api_key", KEY))
            .and(header("content-type", "application/json"))
            .and(query_param_is_missing("api_key"))
            .and(body_json(json!({
                "currency": "EUR", "amount": 500,
                "refund_order_id": "re_0190f5a2c3d47e8f9a0b1c2d3e4f5a6c",
                "description": "Returned T-shirt"
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"success": true, "data": {"transaction_id": 4051823, "refund_id": 4051900}}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/json/orders/a%2Fb/refunds"))
            .and(body_partial_json(json!({"amount": 1})))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"success": true, "data": {"transaction_id": "1", "refund_id": "4051901"}}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let client = client(&server, Duration::from_secs(5));
        let accepted = client.refund(&refund_of(500)).await.unwrap();
        assert_eq!(accepted.transaction_id.as_deref(), Some("4051900"));
        let odd_id = RefundRequest {
            order_id: "a/b",
            ..refund_of(1)
        };
        let accepted = client.refund(&odd_id).await.unwrap();
        assert_eq!(accepted.transaction_id.as_deref(), Some("4051901"));
    }

    /// A server that gives `answer` to exactly one request.
    async fn answering_once(answer: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
        server
    }

    /// `call` made on a server that gives `answer` to exactly one request (within 300 ms, or
    /// it timed out).
    async fn answered<T>(
        answer: ResponseTemplate,
        call: impl AsyncFnOnce(&MultiSafepayClient) -> Result<T, PspError>,
    ) -> Result<T, PspError> {
        let server = answering_once(answer).await;
        // Generous for a loaded test machine; the answers that must time out wait 3 s.
        call(&client(&server, Duration::from_millis(2_000))).await
    }

    /// A refund of 500 that MSP answers with `answer` (within 2 s, or it timed out).
    async fn refund_answered(answer: ResponseTemplate) -> Result<RefundAccepted, PspError> {
        answered(answer, async |c| c.refund(&refund_of(500)).await).await
    }

    /// MSP's code, words and the failure of a `Rejected` error.
    fn rejected(err: PspError) -> (i64, String, Failure) {
        let PspError::Rejected {
            error_code,
            error_info,
            failure,
        } = err
        else {
            panic!("not rejected: {err:?}");
        };
        (error_code, error_info, failure)
    }

    /// MSP cancelling refund 4051900 of the order, answering with `answer` (within 2 s).
    async fn cancel_answered(answer: ResponseTemplate) -> Result<(), PspError> {
        answered(answer, async |c| c.cancel_refund(ID, "4051900").await).await
    }

    /// A capture of `amount` of the order, into order `{ID}-c`.
    fn capture_of(amount: i64) -> CaptureRequest<'static> {
        CaptureRequest {
            order_id: ID,
            amount,
            new_order_id: "chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b-c",
        }
    }

    /// Expects exactly one `verb` of `at` with the key in its header (never in the query) and
    /// exactly `body`, and answers it with MSP's yes and `data`.
    async fn expect_one(
        server: &MockServer,
        verb: &str,
        at: &str,
        body: serde_json::Value,
        data: serde_json::Value,
    ) {
        Mock::given(method(verb))
            .and(path(at))
            .and(header("api_key", KEY))
            .and(header("content-type", "application/json"))
            .and(query_param_is_missing("api_key"))
            .and(body_json(body))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"success": true, "data": data})),
            )
            .expect(1)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn a_refund_without_a_refund_id_is_still_accepted() {
        for data in [json!({"transaction_id": 4051823}), json!([]), json!(null)] {
            let answer = json!({"success": true, "data": data});
            let accepted = refund_answered(ResponseTemplate::new(200).set_body_json(answer))
                .await
                .unwrap();
            assert_eq!(accepted.transaction_id, None, "{data}");
        }
        // But a refund id that is no id is not a readable answer.
        let answer = json!({"success": true, "data": {"refund_id": {"id": 1}}});
        let err = refund_answered(ResponseTemplate::new(200).set_body_json(answer))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PspError::Unexpected { ref detail, .. } if detail.contains("refund answer")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn error_1034_is_a_refused_refund() {
        let answer = json!({
            "success": false, "data": {}, "error_code": 1034,
            "error_info": "Cannot refund transaction"
        });
        let err = refund_answered(ResponseTemplate::new(200).set_body_json(answer))
            .await
            .unwrap_err();
        let (error_code, error_info, failure) = rejected(err);
        assert_eq!(
            (error_code, error_info.as_str()),
            (1034, "Cannot refund transaction")
        );
        assert_eq!(failure.code, "refund_refused");
        assert_eq!(failure.psp_reason_code, "1034");
        assert!(failure.message.contains("Cannot refund transaction"));
    }

    #[tokio::test]
    async fn error_1034_soon_after_a_refund_of_the_same_amount_says_the_rule_first() {
        let answer = json!({
            "success": false, "data": {}, "error_code": 1034,
            "error_info": "Cannot refund transaction"
        });
        let earlier = chrono::DateTime::parse_from_rfc3339("2026-12-06T20:00:10Z")
            .unwrap()
            .to_utc();
        let refused = async |requested_after_s: i64| {
            let refund = RefundRequest {
                requested_at: earlier + chrono::TimeDelta::seconds(requested_after_s),
                same_amount_requested_at: Some(earlier),
                ..refund_of(500)
            };
            let template = ResponseTemplate::new(200).set_body_json(answer.clone());
            rejected(
                answered(template, async |c| c.refund(&refund).await)
                    .await
                    .unwrap_err(),
            )
        };
        let (code, _, failure) = refused(60).await;
        assert_eq!((code, failure.code.as_str()), (1034, "refund_refused"));
        assert!(
            failure
                .message
                .starts_with("MultiSafepay refuses a refund of the same amount"),
            "{}",
            failure.message
        );
        assert!(
            failure
                .message
                .contains("refunded again from 2026-12-06T20:05:10Z"),
            "{}",
            failure.message
        );
        assert!(
            failure
                .message
                .contains("(MultiSafepay: Cannot refund transaction)")
        );
        // Past the window the rule cannot be why: the general words.
        let (_, _, failure) = refused(300).await;
        assert!(
            failure
                .message
                .starts_with("MultiSafepay refused the refund: it is more"),
            "{}",
            failure.message
        );
    }

    #[tokio::test]
    async fn calls_after_the_payment_follow_the_envelope_rules() {
        let envelope = |body: serde_json::Value| ResponseTemplate::new(200).set_body_json(body);
        let accepted = envelope(json!({"success": true, "data": {"refund_id": 1}}));
        let cases = [
            (
                ResponseTemplate::new(500).set_body_json(json!({"success": true, "data": {}})),
                "unreachable",
                "500",
            ),
            (
                ResponseTemplate::new(503).set_body_string("Service Unavailable"),
                "unreachable",
                "503",
            ),
            (
                accepted.set_delay(Duration::from_secs(3)),
                "unreachable",
                "timed out",
            ),
            (
                ResponseTemplate::new(200).set_body_string("<html>Bad gateway</html>"),
                "unexpected",
                "envelope",
            ),
            (
                envelope(json!({"success": false, "data": {}})),
                "unexpected",
                "error_code",
            ),
        ];
        for (answer, outcome, detail) in cases {
            // A slow answer is cut by the timeout: its error says "timed out" (no clock read:
            // the test machine's load must not decide the outcome).
            let (refund, refund_cancel, order_cancel, authorization_cancel, capture) = tokio::join!(
                refund_answered(answer.clone()),
                cancel_answered(answer.clone()),
                answered(answer.clone(), async |c| c.cancel_order(ID).await),
                answered(answer.clone(), async |c| {
                    c.cancel_authorization(ID, None).await
                }),
                answered(answer, async |c| c.capture(&capture_of(3000)).await),
            );
            let results = [
                refund.map(drop),
                refund_cancel,
                order_cancel.map(drop),
                authorization_cancel.map(drop),
                capture.map(drop),
            ];
            for result in results {
                assert_eq!(outcome_label(&result), outcome, "{detail}: {result:?}");
                assert!(
                    result.is_err_and(|e| e.to_string().contains(detail)),
                    "{detail}"
                );
            }
        }
    }

    #[tokio::test]
    async fn cancel_refund_patches_the_refund_to_void() {
        let server = MockServer::start().await;
        let void = || json!({"status": "void"});
        let refund = format!("/v1/json/orders/{ID}/refunds/4051900");
        expect_one(&server, "PATCH", &refund, void(), json!({})).await;
        let odd = "/v1/json/orders/a%2Fb/refunds/9%3Fx";
        expect_one(&server, "PATCH", odd, void(), json!([])).await;
        let client = client(&server, Duration::from_secs(5));
        client.cancel_refund(ID, "4051900").await.unwrap();
        client.cancel_refund("a/b", "9?x").await.unwrap();
    }

    #[tokio::test]
    async fn cancel_order_patches_the_order_to_cancelled() {
        let server = MockServer::start().await;
        let cancel = || json!({"status": "cancelled", "exclude_order": true});
        let order = format!("/v1/json/orders/{ID}");
        expect_one(&server, "PATCH", &order, cancel(), json!({})).await;
        // MSP's yes is enough, whatever its data.
        let odd = "/v1/json/orders/a%2Fb%3Fc";
        expect_one(&server, "PATCH", odd, cancel(), json!([])).await;
        let client = client(&server, Duration::from_secs(5));
        // What the order shows from now on: MSP voids a cancelled order.
        assert_eq!(client.cancel_order(ID).await.unwrap().status_text, "void");
        client.cancel_order("a/b?c").await.unwrap();
    }

    #[tokio::test]
    async fn cancel_authorization_patches_the_capture_with_its_reason() {
        let server = MockServer::start().await;
        let capture = format!("/v1/json/capture/{ID}");
        let with_reason = json!({"status": "cancelled", "reason": "requested_by_customer"});
        let data = json!({"transaction_id": 4051823, "order_id": ID, "success": true});
        expect_one(&server, "PATCH", &capture, with_reason, data).await;
        let without_reason = json!({"status": "cancelled"});
        let odd = "/v1/json/capture/a%2Fb%3Fc";
        expect_one(&server, "PATCH", odd, without_reason, json!(null)).await;
        let client = client(&server, Duration::from_secs(5));
        let canceled = client
            .cancel_authorization(ID, Some("requested_by_customer"))
            .await
            .unwrap();
        assert_eq!(canceled.status_text, "void");
        client.cancel_authorization("a/b?c", None).await.unwrap();
    }

    #[tokio::test]
    async fn a_cancel_or_capture_msp_refuses_is_rejected_with_its_reason() {
        let refusal = |status| {
            ResponseTemplate::new(status).set_body_json(json!({
                "success": false, "data": {}, "error_code": 1000,
                "error_info": "Transaction cannot be cancelled"
            }))
        };
        let (order, authorization, capture) = tokio::join!(
            answered(refusal(200), async |c| c.cancel_order(ID).await),
            answered(refusal(410), async |c| {
                c.cancel_authorization(ID, Some("other")).await
            }),
            answered(refusal(400), async |c| c.capture(&capture_of(3000)).await),
        );
        let results = [
            (
                order.map(drop),
                "checkout_not_cancelable",
                "MultiSafepay refused to cancel",
            ),
            (
                authorization.map(drop),
                "checkout_not_cancelable",
                "MultiSafepay refused to cancel",
            ),
            (
                capture.map(drop),
                "checkout_not_capturable",
                "MultiSafepay refused to capture",
            ),
        ];
        for (result, code, opening) in results {
            let (error_code, error_info, failure) = rejected(result.unwrap_err());
            assert_eq!(
                (error_code, error_info.as_str()),
                (1000, "Transaction cannot be cancelled")
            );
            assert_eq!(failure.code, code);
            assert_eq!(failure.psp_reason_code, "1000");
            assert!(
                failure.message.starts_with(opening)
                    && failure.message.contains("Transaction cannot be cancelled"),
                "{}",
                failure.message
            );
        }
    }

    #[tokio::test]
    async fn a_refund_msp_will_not_cancel_is_rejected_with_its_code() {
        let answer =
            json!({"success": false, "data": {}, "error_code": 1000, "error_info": "Not found"});
        let err = cancel_answered(ResponseTemplate::new(410).set_body_json(answer))
            .await
            .unwrap_err();
        let (error_code, error_info, failure) = rejected(err);
        assert_eq!((error_code, error_info.as_str()), (1000, "Not found"));
        assert_eq!(failure.code, "refund_not_cancelable");
        assert_eq!(failure.psp_reason_code, "1000");
    }

    #[tokio::test]
    async fn a_refund_or_capture_of_nothing_is_never_sent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let client = client(&server, Duration::from_secs(5));
        for amount in [0, -500] {
            let refunded = client.refund(&refund_of(amount)).await.map(drop);
            let captured = client.capture(&capture_of(amount)).await.map(drop);
            for err in [refunded.unwrap_err(), captured.unwrap_err()] {
                let PspError::Unexpected { ref detail, .. } = err else {
                    panic!("sent: {err:?}");
                };
                assert!(
                    detail.contains(&format!("of {amount} minor units")),
                    "{detail}"
                );
            }
        }
    }

    #[tokio::test]
    async fn capture_posts_the_amount_and_reads_the_new_order() {
        let server = MockServer::start().await;
        let new_order_id = "chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b-c";
        let body = |amount| {
            json!({
                "amount": amount, "new_order_id": new_order_id, "new_order_status": "completed"
            })
        };
        let capture = format!("/v1/json/orders/{ID}/capture");
        let data = json!({"transaction_id": 4051950, "order_id": new_order_id});
        expect_one(&server, "POST", &capture, body(3000), data).await;
        let odd = "/v1/json/orders/a%2Fb%3Fc/capture";
        let data = json!({"transaction_id": "4051951"});
        expect_one(&server, "POST", odd, body(1), data).await;
        let client = client(&server, Duration::from_secs(5));
        let (accepted, logs) = logged(client.capture(&capture_of(3000))).await;
        let accepted = accepted.unwrap();
        assert!(logs.contains(ID) && logs.contains("4051950"), "{logs}");
        assert_eq!(
            accepted,
            CaptureAccepted {
                transaction_id: Some("4051950".into()),
                order_id: Some(new_order_id.into()),
            }
        );
        let odd_id = CaptureRequest {
            order_id: "a/b?c",
            ..capture_of(1)
        };
        let accepted = client.capture(&odd_id).await.unwrap();
        assert_eq!(accepted.transaction_id.as_deref(), Some("4051951"));
        assert_eq!(accepted.order_id, None);
    }

    #[tokio::test]
    async fn a_capture_without_ids_is_still_accepted() {
        let capture = async |data: serde_json::Value| {
            let answer = json!({"success": true, "data": data});
            let answer = ResponseTemplate::new(200).set_body_json(answer);
            answered(answer, async |c| c.capture(&capture_of(3000)).await).await
        };
        for data in [
            json!({}),
            json!({"transaction_id": "", "order_id": null}),
            json!([]),
            json!(null),
        ] {
            let accepted = capture(data.clone()).await.unwrap();
            assert_eq!(
                (accepted.transaction_id, accepted.order_id),
                (None, None),
                "{data}"
            );
        }
        // But an id that is no id is not a readable answer.
        let err = capture(json!({"transaction_id": {"id": 1}}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PspError::Unexpected { ref detail, .. } if detail.contains("capture answer")),
            "{err:?}"
        );
    }

    #[test]
    fn notifications_are_bare_order_objects() {
        let body = br#"{"amount":1000,"order_id":"chk_1","transaction_id":4051823,"status":"completed","reason":"","reason_code":null}"#;
        let order = parse_notification(body).unwrap();
        assert_eq!(order.order_id, "chk_1");
        assert_eq!(order.status, PaymentStatus::Succeeded);
        assert_eq!(order.reason_code, "");
        assert!(matches!(
            parse_notification(b"OK"),
            Err(PspError::Unexpected { .. })
        ));
        assert!(matches!(
            parse_notification(br#"{"success":true,"data":{"order_id":"x"}}"#),
            Err(PspError::Unexpected { .. })
        ));
    }

    #[test]
    fn bad_configuration_is_refused() {
        let key = || SecretString::from(KEY);
        let t = Duration::from_secs(1);
        assert!(MultiSafepayClient::new("not a url", key(), t, t).is_err());
        assert!(MultiSafepayClient::new("ftp://x/v1/json", key(), t, t).is_err());
        assert!(MultiSafepayClient::new("https://x/v1/json?api_key=k", key(), t, t).is_err());
        assert!(
            MultiSafepayClient::new("https://x/v1/json", SecretString::from("a\nb"), t, t).is_err()
        );
        let c = MultiSafepayClient::new("https://x/v1/json/", key(), t, t).unwrap();
        assert_eq!(c.url(&["orders"]).as_str(), "https://x/v1/json/orders");
        assert!(!format!("{c:?}").contains(KEY));
    }
}
