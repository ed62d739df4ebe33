//! `GET /v1/json/transactions`: MSP's account-wide list of transactions (MSPDOCS
//! `paths/listtransactions.yaml`), for the key's site: one `payment` row per order and
//! one row per refund, chargeback and reversed chargeback, each with the `order_id` of the order
//! it belongs to and its transaction's current status. Newest first; `after`/`before` cursors;
//! `limit` 1–1000 (default 100); filters `created_from` (≥), `created_until` (<),
//! `completed_from`, `completed_until`, `type`, `status`, `financial_status`, `currency`. Times,
//! in rows and in filters, are Europe/Amsterdam wall time without an offset. Its own envelope:
//! `{"success": true, "data": [...], "pager": {...}}`, and 403 `{"message": "Forbidden"}` for a
//! key it does not know.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use super::Sim;
use super::api;
use super::clock::{from_msp_time, msp_time};
use super::disputes::DisputeView;
use super::orders::{Order, Related, TransactionKind};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Serialize)]
struct RowCustomer<'a> {
    email: Option<&'a str>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
}

/// One row (OAS `Transaction.yaml`; validates against the Python SDK's `Transaction`).
#[derive(Serialize)]
struct Row<'a> {
    amount: i64,
    completed: Option<String>,
    costs: [(); 0],
    created: String,
    currency: &'a str,
    customer: RowCustomer<'a>,
    debit_credit: &'static str,
    description: &'a str,
    dispute: Option<DisputeView<'a>>,
    financial_status: &'a str,
    invoice_id: Option<&'a str>,
    modified: String,
    net: i64,
    order_id: &'a str,
    payment_method: &'a str,
    reason: &'a str,
    reason_code: &'a str,
    site_id: String,
    status: &'a str,
    transaction_id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    var1: Option<&'a str>,
    var2: Option<&'a str>,
    var3: Option<&'a str>,
}

/// What a row is sorted and filtered by, and the row itself once rendered.
struct Listed {
    created: NaiveDateTime,
    completed: Option<NaiveDateTime>,
    transaction_id: u64,
    kind: &'static str,
    status: String,
    financial_status: String,
    currency: String,
    json: serde_json::Value,
}

fn row_kind(kind: TransactionKind) -> Option<&'static str> {
    match kind {
        TransactionKind::Refund => Some("refund"),
        TransactionKind::Chargeback => Some("chargeback"),
        TransactionKind::ReverseChargeback => Some("reverse_chargeback"),
        // A capture moves no money of its own on the list: the payment row shows it.
        TransactionKind::Capture => None,
    }
}

fn rows_of(site: usize, order: &Order) -> Vec<Listed> {
    let customer = RowCustomer {
        email: order.customer.email.as_deref(),
        first_name: order.customer.first_name.as_deref(),
        last_name: order.customer.last_name.as_deref(),
    };
    let site_id = (site + 1).to_string();
    let payment = Row {
        amount: order.amount as i64,
        completed: order.completed.map(msp_time),
        costs: [],
        created: msp_time(order.created),
        currency: &order.currency,
        customer,
        debit_credit: "C",
        description: &order.description,
        dispute: None,
        financial_status: order.status.financial_str(),
        invoice_id: None,
        modified: msp_time(order.modified),
        net: order.amount as i64,
        order_id: &order.order_id,
        payment_method: order.card.brand.gateway(),
        reason: &order.reason,
        reason_code: &order.reason_code,
        site_id: site_id.clone(),
        status: order.status.as_str(),
        transaction_id: order.transaction_id.to_string(),
        kind: "payment",
        var1: order.vars[0].as_deref(),
        var2: order.vars[1].as_deref(),
        var3: order.vars[2].as_deref(),
    };
    let mut out = vec![Listed {
        created: order.created,
        completed: order.completed,
        transaction_id: order.transaction_id,
        kind: "payment",
        status: payment.status.to_owned(),
        financial_status: payment.financial_status.to_owned(),
        currency: order.currency.clone(),
        json: serde_json::to_value(&payment).unwrap_or_default(),
    }];
    for r in &order.related {
        let Some(kind) = row_kind(r.kind) else {
            continue;
        };
        out.push(related_row(site_id.clone(), order, r, kind));
    }
    out
}

fn related_row(site_id: String, order: &Order, r: &Related, kind: &'static str) -> Listed {
    let status = r.status.as_str();
    let completed = (status == "completed").then_some(r.modified);
    let debit = matches!(kind, "refund" | "chargeback");
    let signed = if debit {
        -(r.amount as i64)
    } else {
        r.amount as i64
    };
    let row = Row {
        amount: signed,
        completed: completed.map(msp_time),
        costs: [],
        created: msp_time(r.created),
        currency: &order.currency,
        customer: RowCustomer {
            email: order.customer.email.as_deref(),
            first_name: order.customer.first_name.as_deref(),
            last_name: order.customer.last_name.as_deref(),
        },
        debit_credit: if debit { "D" } else { "C" },
        description: r.description.as_deref().unwrap_or(""),
        dispute: r.dispute.as_ref().map(DisputeView::of),
        financial_status: status,
        invoice_id: None,
        modified: msp_time(r.modified),
        net: signed,
        order_id: &order.order_id,
        payment_method: order.card.brand.gateway(),
        reason: "",
        reason_code: r
            .dispute
            .as_ref()
            .map(|d| d.reason_code.as_str())
            .unwrap_or(""),
        site_id,
        status,
        transaction_id: r.transaction_id.to_string(),
        kind,
        var1: order.vars[0].as_deref(),
        var2: order.vars[1].as_deref(),
        var3: order.vars[2].as_deref(),
    };
    Listed {
        created: r.created,
        completed,
        transaction_id: r.transaction_id,
        kind,
        status: status.to_owned(),
        financial_status: status.to_owned(),
        currency: order.currency.clone(),
        json: serde_json::to_value(&row).unwrap_or_default(),
    }
}

fn bad_request(message: String) -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({ "message": message }))
}

/// A filter's time: `YYYY-MM-DDTHH:MM:SS`, `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD` (Amsterdam wall
/// time) or Unix seconds.
fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, HttpResponse> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or_else(|| bad_request(format!("{name} is not a time")));
    }
    let local = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map(|d| d.and_time(Default::default()))
        })
        .map_err(|_| {
            bad_request(format!(
                "{name} {value:?} is not a time: send YYYY-MM-DDTHH:MM:SS or YYYY-MM-DD (CET/CEST) or Unix seconds"
            ))
        })?;
    Ok(from_msp_time(local))
}

/// A row's place in the list, as a cursor: `<created unix ms>.<transaction id>`.
fn cursor_of(l: &Listed) -> String {
    format!(
        "{}.{}",
        l.created.and_utc().timestamp_millis(),
        l.transaction_id
    )
}

fn parse_cursor(name: &str, value: &str) -> Result<(i64, u64), HttpResponse> {
    value
        .split_once('.')
        .and_then(|(ms, id)| Some((ms.parse().ok()?, id.parse().ok()?)))
        .ok_or_else(|| bad_request(format!("{name} is not a cursor this list gave out")))
}

/// `GET /v1/json/transactions`
pub(crate) async fn list(sim: web::Data<Sim>, req: HttpRequest) -> HttpResponse {
    api::latency(&sim).await;
    let Ok(site) = api::authenticate(&sim, &req) else {
        return HttpResponse::Forbidden().json(serde_json::json!({"message": "Forbidden"}));
    };
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}"
                ));
            }
        },
    };
    let mut bounds = Vec::new();
    for name in [
        "created_from",
        "created_until",
        "completed_from",
        "completed_until",
    ] {
        match get(name).map(|v| parse_time(name, v)).transpose() {
            Ok(t) => bounds.push(t),
            Err(answer) => return answer,
        }
    }
    let (after, before) = match (
        get("after").map(|v| parse_cursor("after", v)).transpose(),
        get("before").map(|v| parse_cursor("before", v)).transpose(),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    let mut rows: Vec<Listed> = sim.orders.collect(|key, order| {
        if key.0 == site {
            rows_of(site, order)
        } else {
            Vec::new()
        }
    });
    let within =
        |t: Option<NaiveDateTime>, from: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>| {
            if from.is_none() && until.is_none() {
                return true;
            }
            let Some(t) = t.map(|t| t.and_utc()) else {
                return false;
            };
            from.is_none_or(|f| t >= f) && until.is_none_or(|u| t < u)
        };
    rows.retain(|l| {
        within(Some(l.created), bounds[0], bounds[1])
            && within(l.completed, bounds[2], bounds[3])
            && get("type").is_none_or(|t| t == l.kind)
            && get("status").is_none_or(|s| s == l.status)
            && get("financial_status").is_none_or(|s| s == l.financial_status)
            && get("currency").is_none_or(|c| c.eq_ignore_ascii_case(&l.currency))
    });
    // Newest first; one instant's rows by transaction id, highest first.
    let place = |l: &Listed| (l.created.and_utc().timestamp_millis(), l.transaction_id);
    rows.sort_by_key(|l| std::cmp::Reverse(place(l)));
    let page: Vec<&Listed> = match (after, before) {
        (_, Some(b)) => {
            let newer: Vec<&Listed> = rows.iter().filter(|l| place(l) > b).collect();
            let skip = newer.len().saturating_sub(limit);
            newer.into_iter().skip(skip).collect()
        }
        (Some(a), None) => rows.iter().filter(|l| place(l) < a).take(limit).collect(),
        (None, None) => rows.iter().take(limit).collect(),
    };
    let link = |name: &str, cursor: &str| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query {
            if !matches!(k.as_str(), "after" | "before" | "api_key") {
                pairs.append_pair(k, v);
            }
        }
        pairs.append_pair(name, cursor);
        format!("{}/v1/json/transactions?{}", sim.base_url, pairs.finish())
    };
    let cursor_after = page.last().map(|l| cursor_of(l));
    let cursor_before = page.first().map(|l| cursor_of(l));
    let data: Vec<&serde_json::Value> = page.iter().map(|l| &l.json).collect();
    HttpResponse::Ok().json(serde_json::json!({
        "success": true,
        "data": data,
        "pager": {
            "after": cursor_after.as_deref().map(|c| link("after", c)),
            "before": cursor_before.as_deref().map(|c| link("before", c)),
            "cursor": {"after": cursor_after, "before": cursor_before},
            "limit": limit,
        },
    }))
}
