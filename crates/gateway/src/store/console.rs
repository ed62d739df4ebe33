//! What the operators' console keeps: its sessions, its sign-in failure counts, the actions taken
//! on each checkout, and the small search indexes (customer email, card last 4, MSP transaction
//! id) that the checkout record cannot answer by itself. Every entry has a TTL; none holds a
//! card number or a secret (sessions are stored under a digest of their id, emails under a
//! digest of the address).

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::checkout::CheckoutId;

/// Which search index an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchIndex {
    /// By the hex SHA-256 of the lower-cased customer email.
    Email,
    /// By the card's last 4 digits.
    Last4,
    /// By MSP's transaction id.
    MspTransaction,
}

impl SearchIndex {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Last4 => "last4",
            Self::MspTransaction => "msptx",
        }
    }
}

/// Where one console entry lives.
#[derive(Clone, Copy, Debug)]
pub enum ConsoleSlot<'a> {
    /// A session, by the hex digest of its id.
    Session(&'a str),
    /// Failed sign-ins from one client address within one minute (Unix minutes).
    SignInFailures { client: &'a str, minute: i64 },
    /// The console actions taken on a checkout, newest first (it shares the checkout's TTL).
    Actions(&'a CheckoutId),
    /// One search index entry: checkout ids, newest first.
    Index(SearchIndex, &'a str),
}

/// The console's storage: a few plain operations on its own keys.
#[async_trait]
pub trait ConsoleData: Send + Sync + 'static {
    async fn console_put(
        &self,
        slot: ConsoleSlot<'_>,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    async fn console_get(&self, slot: ConsoleSlot<'_>) -> Result<Option<String>, StoreError>;

    async fn console_delete(&self, slot: ConsoleSlot<'_>) -> Result<(), StoreError>;

    /// Adds one to a counter (made with `ttl` when new) and answers its new value.
    async fn console_count(&self, slot: ConsoleSlot<'_>, ttl: Duration) -> Result<u64, StoreError>;

    /// The counter's value (0 when there is none).
    async fn console_counted(&self, slot: ConsoleSlot<'_>) -> Result<u64, StoreError>;

    /// Puts `value` first in a list, keeps its newest `keep` entries and sets its TTL.
    async fn console_push(
        &self,
        slot: ConsoleSlot<'_>,
        value: &str,
        keep: usize,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// A list's first `limit` entries, newest first.
    async fn console_list(
        &self,
        slot: ConsoleSlot<'_>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Puts checkout `id` first in the search index entry of `value` (at most [`INDEX_KEEP`]
    /// checkouts per value, with the checkouts' retention).
    async fn console_index(
        &self,
        index: SearchIndex,
        value: &str,
        id: &CheckoutId,
    ) -> Result<(), StoreError>;

    /// The checkout an idempotency key created, when its record names one.
    async fn idempotency_checkout(&self, key: &str) -> Result<Option<CheckoutId>, StoreError>;
}

/// The newest checkouts kept per search index value.
pub const INDEX_KEEP: usize = 100;

/// The lower-cased, trimmed email's SHA-256, in hex: what the email index is keyed by, so that
/// no address is stored in a key.
pub fn email_digest(email: &str) -> String {
    let normal = email.trim().to_lowercase();
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, normal.as_bytes()).as_ref())
}

/// The search entries of a new checkout: its customer's email (by digest) and its card's last
/// 4 digits, when they are 4 digits. Written with the record ([`Records::insert_new`]).
///
/// [`Records::insert_new`]: super::Records::insert_new
pub fn new_checkout_search(email: &str, last4: &str) -> Vec<(SearchIndex, String)> {
    let mut search = vec![(SearchIndex::Email, email_digest(email))];
    if last4.len() == 4 && last4.bytes().all(|b| b.is_ascii_digit()) {
        search.push((SearchIndex::Last4, last4.to_owned()));
    }
    search
}

/// The checkout id a stored idempotent response shows (`"id": "chk_…"` of its JSON body).
pub(crate) fn checkout_of_response(body: &str) -> Option<CheckoutId> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    CheckoutId::parse(value.get("id")?.as_str()?).ok()
}
