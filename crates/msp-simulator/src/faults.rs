//! Faults injected at run time (`PUT /sim/faults`), for the gateway's tests and benchmarks.

use serde::{Deserialize, Serialize};

/// How `POST /orders` fails, when it is told to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateFailure {
    #[default]
    None,
    /// HTTP 500 and no order.
    #[serde(rename = "http_500")]
    Http500,
    /// HTTP 200 with `success: false` and error 1024, and no order (as MSP sometimes answers a
    /// refused authorisation).
    #[serde(rename = "success_false_200")]
    SuccessFalse200,
    /// The order is created (and notified) as usual, but the answer is held back until the
    /// client gives up: the caller cannot know the outcome and has to ask for it.
    Timeout,
}

/// How `POST /orders/{id}/refunds` fails, when it is told to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundFailure {
    #[default]
    None,
    /// The refund is accepted (`reserved`), then `declined` when it would have settled; its
    /// amount goes back on the order.
    Declined,
    /// The refund is made and recorded (and notified) as usual, but the answer is held back
    /// until the client gives up: the caller has to look for it in `related_transactions`.
    Timeout,
}

/// How a capture (`POST /orders/{id}/capture`) or a cancellation (`PATCH /orders/{id}`,
/// `PATCH /capture/{id}`) fails, when it is told to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeFailure {
    #[default]
    None,
    /// The change is made (and notified) as usual, but the answer is held back until the
    /// client gives up: the caller has to read the order to learn that it happened.
    Timeout,
}

/// The current faults; every field has a harmless default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added before every `/v1/json` answer.
    pub latency_ms: u64,
    /// Added before the first attempt of every notification.
    pub notification_delay_ms: u64,
    pub create_failure: CreateFailure,
    pub refund_failure: RefundFailure,
    pub capture_failure: ChangeFailure,
    pub cancel_failure: ChangeFailure,
    /// Notifications are not sent at all (and not listed).
    pub drop_notifications: bool,
    /// Every attempt is sent twice.
    pub duplicate_notifications: bool,
    /// An order's notification is held until its next one (or a second) and sent after it.
    pub reorder_notifications: bool,
    /// `Auth` and the `timestamp` parameter carry a time an hour in the past.
    pub stale_timestamps: bool,
    /// `Auth` is signed with a wrong key.
    pub bad_signatures: bool,
}

/// The body of `PUT /sim/faults`: every field optional, merged into the current faults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    latency_ms: Option<u64>,
    notification_delay_ms: Option<u64>,
    create_failure: Option<CreateFailure>,
    refund_failure: Option<RefundFailure>,
    capture_failure: Option<ChangeFailure>,
    cancel_failure: Option<ChangeFailure>,
    drop_notifications: Option<bool>,
    duplicate_notifications: Option<bool>,
    reorder_notifications: Option<bool>,
    stale_timestamps: Option<bool>,
    bad_signatures: Option<bool>,
}

impl Faults {
    pub fn merge(&mut self, patch: FaultsPatch) {
        let FaultsPatch {
            latency_ms,
            notification_delay_ms,
            create_failure,
            refund_failure,
            capture_failure,
            cancel_failure,
            drop_notifications,
            duplicate_notifications,
            reorder_notifications,
            stale_timestamps,
            bad_signatures,
        } = patch;
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = $f { self.$f = v; } )* };
        }
        set!(
            latency_ms,
            notification_delay_ms,
            create_failure,
            refund_failure,
            capture_failure,
            cancel_failure,
            drop_notifications,
            duplicate_notifications,
            reorder_notifications,
            stale_timestamps,
            bad_signatures
        );
    }
}
