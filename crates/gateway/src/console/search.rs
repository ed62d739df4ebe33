//! `GET /console/search?q=`: finds checkouts by their id, shop reference, MSP transaction id,
//! idempotency key, customer email or card last 4. A query that looks like a card number (13
//! to 19 digits) is refused, and never shown back or logged.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::auth;
use super::render::{self, Chrome};
use super::view::{self, Tone};
use crate::domain::checkout::{Checkout, CheckoutId};
use crate::domain::refund::RefundId;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::console::{SearchIndex, email_digest};
use crate::store::listing::{ListQuery, ListReply};

/// The longest query accepted.
const MAX_QUERY: usize = 200;
/// The most matches listed.
const MAX_RESULTS: usize = 50;

/// What a query is.
#[derive(Debug, PartialEq, Eq)]
pub enum Query {
    Empty,
    /// 13 to 19 digits (spaces and dashes aside): a card number, refused.
    CardNumber,
    TooLong,
    Text(String),
}

impl Query {
    pub fn classify(raw: &str) -> Query {
        let q = raw.trim();
        if q.is_empty() {
            return Query::Empty;
        }
        if looks_like_card_number(q) {
            return Query::CardNumber;
        }
        if q.chars().count() > MAX_QUERY {
            return Query::TooLong;
        }
        Query::Text(q.to_owned())
    }
}

/// 13 to 19 digits once spaces and dashes are taken out, or a run of 13 to 19 digits in a query
/// that is not one of the gateway's own ids (whose hex may hold long runs of digits).
pub fn looks_like_card_number(q: &str) -> bool {
    let compact: String = q
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\t'))
        .collect();
    if compact.bytes().all(|b| b.is_ascii_digit()) && (13..=19).contains(&compact.len()) {
        return true;
    }
    let own_id = q.split_once('_').is_some_and(|(prefix, rest)| {
        !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_lowercase())
            && rest.len() == 32
            && rest.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if own_id {
        return false;
    }
    compact
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| (13..=19).contains(&run.len()))
}

/// One matching checkout, and how it matched.
pub struct Match {
    pub checkout: Checkout,
    pub by: &'static str,
}

/// Every checkout `q` names, newest first, without duplicates.
pub async fn find(state: &AppState, q: &str) -> Result<Vec<Match>, StoreError> {
    let store = state.flows.store.as_ref();
    let now = state.flows.clock.now();
    let mut found: Vec<(CheckoutId, &'static str)> = Vec::new();
    if let Ok(id) = CheckoutId::parse(q) {
        found.push((id, "checkout id"));
    } else if let Ok(refund) = RefundId::parse(q) {
        if let Some(id) = store.checkout_of_refund(&refund).await? {
            found.push((id, "refund id"));
        }
    } else {
        if q.contains('@') {
            for id in indexed(state, SearchIndex::Email, &email_digest(q)).await? {
                found.push((id, "customer email"));
            }
        }
        if q.len() == 4 && q.bytes().all(|b| b.is_ascii_digit()) {
            for id in indexed(state, SearchIndex::Last4, q).await? {
                found.push((id, "card last 4"));
            }
        }
        for id in indexed(state, SearchIndex::MspTransaction, q).await? {
            found.push((id, "MSP transaction id"));
        }
        if let Some(id) = store.idempotency_checkout(q).await? {
            found.push((id, "idempotency key"));
        }
        let mut by_reference = ListQuery::first(MAX_RESULTS, now);
        by_reference.reference = Some(q.to_owned());
        if let ListReply::Page(page) = store.list_checkouts(&by_reference).await? {
            for c in page.data {
                found.push((c.id, "shop reference"));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut matches = Vec::new();
    for (id, by) in found {
        if matches.len() >= MAX_RESULTS || !seen.insert(id.clone()) {
            continue;
        }
        if let Some(stored) = store.get(&id).await? {
            matches.push(Match {
                checkout: stored.checkout,
                by,
            });
        }
    }
    matches.sort_by_key(|m| std::cmp::Reverse(m.checkout.created_at));
    Ok(matches)
}

async fn indexed(
    state: &AppState,
    index: SearchIndex,
    value: &str,
) -> Result<Vec<CheckoutId>, StoreError> {
    let ids = state
        .flows
        .store
        .console_list(
            crate::store::console::ConsoleSlot::Index(index, value),
            MAX_RESULTS,
        )
        .await?;
    Ok(ids
        .iter()
        .filter_map(|i| CheckoutId::parse(i).ok())
        .collect())
}

/// A row of the results.
pub struct Row {
    pub href: String,
    pub id: String,
    pub tone: Tone,
    pub word: &'static str,
    pub amount: String,
    pub reference: String,
    pub card: String,
    pub created: String,
    pub by: &'static str,
}

#[derive(Template)]
#[template(path = "console_search.html")]
struct SearchPage {
    chrome: Chrome,
    /// The query as typed (shown escaped), when it may be shown.
    shown: Option<String>,
    message: Option<String>,
    /// The message's colour: `warn` for a refused search, `info` otherwise.
    tone: &'static str,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /console/search?q=`.
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let session = match auth::require(&state, &req).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let query = web::Query::<SearchQuery>::from_query(req.query_string())
        .map(|q| q.into_inner().q)
        .unwrap_or_default();
    let chrome = Chrome::new("Search", "search").signed_in(&session);
    let answer = |status: StatusCode, chrome, shown, message: &str, rows| {
        render::html(
            status,
            &SearchPage {
                chrome,
                shown,
                message: (!message.is_empty()).then(|| message.to_owned()),
                tone: if status == StatusCode::OK {
                    "info"
                } else {
                    "warn"
                },
                rows,
            },
        )
    };
    let q = match Query::classify(&query) {
        Query::Empty => {
            return answer(
                StatusCode::OK,
                chrome,
                None,
                "Search by checkout id, shop reference, MSP transaction id, idempotency key, customer email or the card's last 4 digits.",
                Vec::new(),
            );
        }
        Query::CardNumber => {
            return answer(
                StatusCode::BAD_REQUEST,
                chrome,
                None,
                "That looks like a card number. The console never searches by a full card number: search by the card's last 4 digits instead. Your search was not kept.",
                Vec::new(),
            );
        }
        Query::TooLong => {
            return answer(
                StatusCode::BAD_REQUEST,
                chrome,
                None,
                "That search is too long. Search by one id, reference, email or the card's last 4 digits.",
                Vec::new(),
            );
        }
        Query::Text(q) => q,
    };
    let matches = match find(&state, &q).await {
        Ok(m) => m,
        Err(_) => return render::unavailable(chrome),
    };
    if let [only] = matches.as_slice() {
        return auth::see_other(&format!("/console/checkouts/{}", only.checkout.id));
    }
    let mut chrome = chrome;
    chrome.q = q.clone();
    let message = if matches.is_empty() {
        "No checkout matches this search. Checkouts are kept for the retention period only; check the spelling, or search by another of its details."
    } else {
        ""
    };
    let rows = matches.into_iter().map(|m| row(&m)).collect();
    answer(StatusCode::OK, chrome, Some(q), message, rows)
}

pub fn row(m: &Match) -> Row {
    let c = &m.checkout;
    let (tone, word) = view::checkout_status(c.status);
    Row {
        href: format!("/console/checkouts/{}", c.id),
        id: c.id.to_string(),
        tone,
        word,
        amount: view::amount(c.amount, c.currency),
        reference: c.reference.clone().unwrap_or_default(),
        card: format!("{} •••• {}", view::brand(&c.card.brand), c.card.last4),
        created: view::time(c.created_at),
        by: m.by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_refused_in_any_spelling() {
        for q in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "378282246310005",
            "card 4111111111111111 please",
            "4000000000000000006",
        ] {
            assert_eq!(Query::classify(q), Query::CardNumber, "{q}");
        }
        for q in [
            "1111",
            "order-1234",
            "123456789012",
            "12345678901234567890",
            "chk_0193123456789012345a4b5c6d7e8f9a",
            "jo@example.com",
        ] {
            assert_ne!(Query::classify(q), Query::CardNumber, "{q}");
        }
    }
}
