//! `GET /v1/json/transactions`: MSP's account-wide list.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

impl TestSim {
    pub async fn transactions(&self, key: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .get(self.url("/transactions"))
            .header("api_key", key)
            .query(query)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

#[tokio::test]
async fn rows_are_newest_first_in_amsterdam_time_and_pages_follow_after_cursors() {
    let sim = spawn().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(sim.paid_order(None).await);
    }
    sim.refund_ok(&ids[0], json!({"currency": "EUR", "amount": 100}))
        .await;
    let (_, o) = sim.chargeback(&ids[1]).await;
    assert_eq!(o["status"], "void");
    let other = order_id();
    sim.create_as(OTHER_KEY, &order_body(&other, PAID_CARD))
        .await;

    let (status, all) = sim.transactions(KEY, &[]).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["success"], true);
    let rows = all["data"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "3 payments, a refund, a chargeback: {all}");
    assert!(
        rows.iter().all(|r| r["order_id"] != other.as_str()),
        "one site only"
    );
    let refund = rows.iter().find(|r| r["type"] == "refund").unwrap();
    assert_eq!(refund["order_id"], ids[0].as_str(), "the original order");
    assert_eq!(refund["status"], "reserved");
    let chargeback = rows.iter().find(|r| r["type"] == "chargeback").unwrap();
    assert_eq!(chargeback["order_id"], ids[1].as_str());
    assert_eq!(chargeback["dispute"]["status"], "new");
    // Amsterdam wall time, no offset.
    let created = rows[0]["created"].as_str().unwrap();
    let local = chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%S").unwrap();
    let utc = chrono::Utc::now().naive_utc();
    let offset = (local - utc).num_minutes();
    assert!((59..=121).contains(&offset), "{created} vs {utc}");
    // Newest first.
    let stamps: Vec<&str> = rows
        .iter()
        .map(|r| r["created"].as_str().unwrap())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(stamps, sorted);

    // Two rows a page, following `after` until a page is empty.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("limit", "2")];
        if let Some(a) = &after {
            q.push(("after", a.as_str()));
        }
        let (_, page) = sim.transactions(KEY, &q).await;
        assert_eq!(page["pager"]["limit"], 2);
        let data = page["data"].as_array().unwrap().clone();
        if data.is_empty() {
            break;
        }
        pages += 1;
        assert!(data.len() <= 2);
        assert!(page["pager"]["after"].as_str().unwrap().contains("after="));
        seen.extend(data.iter().map(|r| r["transaction_id"].clone()));
        after = Some(
            page["pager"]["cursor"]["after"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(pages, 3);
    let whole: Vec<Value> = rows.iter().map(|r| r["transaction_id"].clone()).collect();
    assert_eq!(seen, whole, "the pages are the list, in order, once each");
    let distinct: HashSet<String> = seen.iter().map(|v| v.to_string()).collect();
    assert_eq!(distinct.len(), 5);

    // `before` goes back.
    let (_, second) = sim
        .transactions(KEY, &[("limit", "2"), ("after", &first_cursor(&sim).await)])
        .await;
    let back = second["pager"]["cursor"]["before"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, first) = sim
        .transactions(KEY, &[("limit", "2"), ("before", &back)])
        .await;
    assert_eq!(first["data"], Value::Array(rows[..2].to_vec()));

    // Filters.
    let (_, refunds) = sim.transactions(KEY, &[("type", "refund")]).await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1);
    let (_, none) = sim
        .transactions(KEY, &[("created_until", "2001-01-01T00:00:00")])
        .await;
    assert_eq!(none["data"], json!([]));
    let (_, since) = sim.transactions(KEY, &[("created_from", created)]).await;
    assert!(!since["data"].as_array().unwrap().is_empty());
    for bad in [
        ("limit", "0"),
        ("limit", "1001"),
        ("created_from", "yesterday"),
    ] {
        assert_eq!(sim.transactions(KEY, &[bad]).await.0, 400, "{bad:?}");
    }
    sim.handle.stop().await;
}

async fn first_cursor(sim: &TestSim) -> String {
    let (_, page) = sim.transactions(KEY, &[("limit", "2")]).await;
    page["pager"]["cursor"]["after"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_bad_key_is_403_in_the_lists_own_envelope() {
    let sim = spawn().await;
    let (status, body) = sim.transactions("nope", &[]).await;
    assert_eq!((status, body), (403, json!({"message": "Forbidden"})));
    sim.handle.stop().await;
}

#[tokio::test]
async fn filter_times_are_amsterdam_time_on_both_sides_of_a_daylight_saving_change() {
    let sim = spawn().await;
    // Move the clock to just before 02:00 CET on the last Sunday of March after now.
    let now = chrono::Utc::now();
    let target = next_spring_change(now) - chrono::TimeDelta::minutes(30);
    sim.advance((target - now).num_seconds() as u64).await;
    let before = sim.paid_order(None).await;
    sim.advance(3600).await;
    let after = sim.paid_order(None).await;
    let (_, all) = sim.transactions(KEY, &[]).await;
    let stamp = |id: &str| {
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["order_id"] == id)
            .unwrap()["created"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // About 01:30 CET, then an hour later about 03:30 CEST: the wall clock skipped an hour.
    let hour = |s: String| s[11..13].to_owned();
    assert_eq!(hour(stamp(&before)), "01", "{}", stamp(&before));
    assert_eq!(hour(stamp(&after)), "03", "{}", stamp(&after));
    // A filter at 03:00 Amsterdam time (01:00 UTC) splits them.
    let day = &stamp(&after)[..10];
    let split = format!("{day}T03:00:00");
    let (_, later) = sim.transactions(KEY, &[("created_from", &split)]).await;
    let ids: Vec<&str> = later["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [after.as_str()]);
    sim.handle.stop().await;
}

/// 01:00 UTC on the last Sunday of March after `now`: when Amsterdam moves to summer time.
pub fn next_spring_change(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{Datelike, TimeZone};
    let mut year = now.year();
    loop {
        let last = chrono::NaiveDate::from_ymd_opt(year, 3, 31).unwrap();
        let back = last.weekday().num_days_from_sunday();
        let sunday = last - chrono::TimeDelta::days(back as i64);
        let change = chrono::Utc.from_utc_datetime(&sunday.and_hms_opt(1, 0, 0).unwrap());
        if change > now + chrono::TimeDelta::hours(2) {
            return change;
        }
        year += 1;
    }
}
