//! `GET /v1/checkouts`: the merchant's checkouts, newest first, page by page; and
//! the paging of the lists under one checkout (`SubListQuery`).
//!
//! `limit` (1–100, default 10), `starting_after` / `ending_before` (a checkout id: the page
//! after or before it, Stripe's semantics), `status`, `reference`, `created_gte`, `created_lt`
//! (RFC 3339). The answer is `{"data": [checkouts as GET /v1/checkouts/{id} shows them],
//! "has_more": bool}`. The store pages through its indexes ([`crate::store::listing`]).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::auth::Merchant;
use super::respond;
use super::strict_json;
use super::to_json;
use super::view::CheckoutView;
use crate::domain::checkout::{CheckoutId, CheckoutStatus};
use crate::domain::validation::FieldError;
use crate::errors::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::store::StoredResponse;
use crate::store::listing::{Cursor, ListQuery, ListReply};

const PARAMETERS: &[&str] = &[
    "limit",
    "starting_after",
    "ending_before",
    "status",
    "reference",
    "created_gte",
    "created_lt",
];

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;
/// As long as a checkout's `reference` may be: a longer one matches nothing.
const MAX_REFERENCE_CHARS: usize = 100;

/// One page of a list, the one shape of every list the API answers.
#[derive(Debug, Serialize)]
pub(super) struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

pub async fn list(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), PARAMETERS)?;
    let query = parse(req.query_string(), state.flows.clock.now())?;
    let reply = state
        .flows
        .store
        .list_checkouts(&query)
        .await
        .map_err(ApiError::store_unavailable)?;
    let page = match reply {
        ListReply::Page(page) => page,
        ListReply::UnknownCursor => {
            let param = match query.cursor {
                Some(Cursor::EndingBefore(_)) => "ending_before",
                _ => "starting_after",
            };
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "No checkout has the id given in `{param}` (it may be older than the retention): send an `id` from a page you listed, or leave `{param}` out to start from the newest checkout."
                ),
            )
            .with_param(param));
        }
    };
    let public_url = state.public_url();
    let view = Page {
        data: page
            .data
            .iter()
            .map(|c| CheckoutView::new(c, public_url))
            .collect(),
        has_more: page.has_more,
    };
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&view),
    }))
}

/// The query string (already checked for unknown and repeated parameters) as a [`ListQuery`].
pub fn parse(query: &str, now: DateTime<Utc>) -> Result<ListQuery, FieldError> {
    let mut list = ListQuery::first(DEFAULT_LIMIT, now);
    let mut after = None;
    let mut before = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "limit" => list.limit = limit(&value)?,
            "starting_after" => after = Some(cursor("starting_after", &value)?),
            "ending_before" => before = Some(cursor("ending_before", &value)?),
            "status" => list.status = Some(status(&value)?),
            "reference" => list.reference = Some(reference(&value)?),
            "created_gte" => list.created_gte = Some(timestamp("created_gte", &value)?),
            "created_lt" => list.created_lt = Some(timestamp("created_lt", &value)?),
            _ => {} // check_query refused it already
        }
    }
    list.cursor = match (after, before) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "ending_before",
                "Send either `starting_after` (the next, older page) or `ending_before` (the previous, newer page), not both.",
            ));
        }
        (Some(id), None) => Some(Cursor::StartingAfter(id)),
        (None, Some(id)) => Some(Cursor::EndingBefore(id)),
        (None, None) => None,
    };
    Ok(list)
}

fn invalid(param: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(param, ErrorCode::InvalidParameter, message)
}

/// `limit`: 1 to [`MAX_LIMIT`] (every list's rule).
pub(super) fn limit(value: &str) -> Result<usize, FieldError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            invalid(
                "limit",
                format!(
                    "`limit` is a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}): page with `starting_after` for more."
                ),
            )
        })
}

fn cursor(param: &str, value: &str) -> Result<CheckoutId, FieldError> {
    CheckoutId::parse(value).map_err(|_| {
        invalid(
            param,
            format!(
                "`{param}` is a checkout id (`chk_` followed by 32 lowercase hex digits): send the `id` of the last (`starting_after`) or first (`ending_before`) checkout of the page you have."
            ),
        )
    })
}

fn status(value: &str) -> Result<CheckoutStatus, FieldError> {
    CheckoutStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == value)
        .ok_or_else(|| {
            let all: Vec<&str> = CheckoutStatus::ALL.iter().map(|s| s.as_str()).collect();
            invalid("status", format!("`status` is one of: {}.", all.join(", ")))
        })
}

fn reference(value: &str) -> Result<String, FieldError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_REFERENCE_CHARS {
        return Err(invalid(
            "reference",
            format!(
                "`reference` is your order reference as sent in POST /v1/checkouts (1 to {MAX_REFERENCE_CHARS} characters), URL-encoded."
            ),
        ));
    }
    Ok(value.to_owned())
}

/// RFC 3339. A `+` of an offset that was not URL-encoded arrives as a space: it is read back as
/// the `+` it was meant to be.
fn timestamp(param: &str, value: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(value)
        .or_else(|e| {
            if value.contains(' ') {
                DateTime::parse_from_rfc3339(&value.replace(' ', "+"))
            } else {
                Err(e)
            }
        })
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            invalid(
                param,
                format!(
                    "`{param}` is an RFC 3339 timestamp such as 2026-11-24T10:00:00Z (URL-encode a `+` offset as %2B)."
                ),
            )
        })
}

/// `?limit=&starting_after=` of the lists under one checkout (its refunds, its history): oldest
/// first, with the cursors of every list. Both are held whole in the checkout's record (a
/// bounded number of entries), so they are paged here rather than by an index.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SubListQuery {
    pub limit: usize,
    /// The id of the last entry of the page the caller has, as sent (the list checks it names
    /// one of its entries).
    pub starting_after: Option<String>,
}

impl SubListQuery {
    /// The query string; an unknown or repeated parameter, or a bad `limit`, is refused.
    pub(super) fn parse(query: &str) -> Result<Self, FieldError> {
        strict_json::check_query(query, &["limit", "starting_after"])?;
        let mut parsed = Self {
            limit: DEFAULT_LIMIT,
            starting_after: None,
        };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "limit" => parsed.limit = limit(&value)?,
                "starting_after" => parsed.starting_after = Some(value.into_owned()),
                _ => {} // check_query refused it already
            }
        }
        Ok(parsed)
    }

    /// The page of `items` (oldest first) after the one whose id is `starting_after`; `id`
    /// reads an item's id and `what` names the items in the message that refuses a cursor
    /// naming none of them.
    pub(super) fn page<T>(
        &self,
        items: Vec<T>,
        id: impl Fn(&T) -> String,
        what: &str,
    ) -> Result<Page<T>, FieldError> {
        let start = match &self.starting_after {
            None => 0,
            Some(after) => {
                items.iter().position(|item| id(item) == *after).ok_or_else(|| {
                    invalid(
                        "starting_after",
                        format!(
                            "`starting_after` names no {what} of this checkout: send the `id` of the last {what} of the page you have, or leave it out for the first page."
                        ),
                    )
                })? + 1
            }
        };
        let has_more = items.len() > start + self.limit;
        let data = items.into_iter().skip(start).take(self.limit).collect();
        Ok(Page { data, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn an_empty_query_is_the_first_page_of_ten() {
        assert_eq!(parse("", now()).unwrap(), ListQuery::first(10, now()));
    }

    #[test]
    fn every_parameter_is_read() {
        let id = "chk_0193a1b2c3d4e5f60718293a4b5c6d7e";
        let q = parse(
            &format!("limit=3&starting_after={id}&status=succeeded&reference=order%201&created_gte=2026-11-01T00:00:00%2B01:00&created_lt=2026-11-02T00:00:00 01:00"),
            now(),
        )
        .unwrap();
        assert_eq!(q.limit, 3);
        assert_eq!(
            q.cursor,
            Some(Cursor::StartingAfter(CheckoutId::parse(id).unwrap()))
        );
        assert_eq!(q.status, Some(CheckoutStatus::Succeeded));
        assert_eq!(q.reference.as_deref(), Some("order 1"));
        assert_eq!(
            q.created_gte.unwrap().to_rfc3339(),
            "2026-10-31T23:00:00+00:00"
        );
        assert_eq!(
            q.created_lt.unwrap().to_rfc3339(),
            "2026-11-01T23:00:00+00:00"
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (query, param) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=ten", "limit"),
            ("limit=", "limit"),
            ("starting_after=chk_123", "starting_after"),
            ("ending_before=", "ending_before"),
            ("status=paid", "status"),
            ("reference=", "reference"),
            ("created_gte=yesterday", "created_gte"),
            ("created_lt=2026-11-24", "created_lt"),
            (
                "starting_after=chk_0193a1b2c3d4e5f60718293a4b5c6d7e&ending_before=chk_0193a1b2c3d4e5f60718293a4b5c6d7e",
                "ending_before",
            ),
        ] {
            let e = parse(query, now()).unwrap_err();
            assert_eq!(e.param, param, "{query}");
            assert_eq!(e.code, ErrorCode::InvalidParameter, "{query}");
        }
    }

    #[test]
    fn a_sub_list_pages_oldest_first_after_the_cursor() {
        let items: Vec<u32> = (1..=5).collect();
        let id = |n: &u32| format!("x{n}");
        let q = SubListQuery::parse("limit=2").unwrap();
        let first = q.page(items.clone(), id, "entry").unwrap();
        assert_eq!((first.data, first.has_more), (vec![1, 2], true));
        let q = SubListQuery::parse("limit=2&starting_after=x4").unwrap();
        let last = q.page(items.clone(), id, "entry").unwrap();
        assert_eq!((last.data, last.has_more), (vec![5], false));
        let q = SubListQuery::parse("").unwrap();
        let all = q.page(items.clone(), id, "entry").unwrap();
        assert_eq!((all.data.len(), all.has_more), (5, false));
        let q = SubListQuery::parse("starting_after=x9").unwrap();
        assert_eq!(
            q.page(items, id, "entry").unwrap_err().param,
            "starting_after"
        );
        for (query, param) in [("limit=0", "limit"), ("ending_before=x1", "ending_before")] {
            assert_eq!(
                SubListQuery::parse(query).unwrap_err().param,
                param,
                "{query}"
            );
        }
    }
}
