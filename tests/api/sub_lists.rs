//! The lists under one checkout (`/v1/checkouts/{id}/refunds`, `/v1/checkouts/{id}/events`)
//! answer pages with the cursors of every list, oldest first.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn page(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let res = app.authed(Method::GET, path).send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

/// Follows `has_more` with `limit` per page: the ids, page by page.
async fn every_page(app: &TestApp, list: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            None => format!("{list}?limit={limit}"),
            Some(id) => format!("{list}?limit={limit}&starting_after={id}"),
        };
        let (status, body) = page(app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let ids: Vec<String> = body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("not a page: {body}"))
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= limit);
        after = ids.last().cloned();
        pages.push(ids);
        if body["has_more"] != true {
            assert_eq!(body["has_more"], false, "{body}");
            return pages;
        }
    }
}

#[tokio::test]
async fn refunds_and_history_of_a_checkout_are_pages_with_cursors() {
    let app = spawn_app().await;
    let checkout = app.create("374500000000015").await;
    assert_eq!(checkout["status"], "succeeded");
    let id = checkout["id"].as_str().unwrap();
    let mut refunds = Vec::new();
    for amount in [100, 200, 300] {
        let res = app
            .authed(Method::POST, &format!("/v1/checkouts/{id}/refunds"))
            .json(&json!({"amount": amount}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let refund: Value = res.json().await.unwrap();
        refunds.push(refund["id"].as_str().unwrap().to_owned());
    }

    let list = format!("/v1/checkouts/{id}/refunds");
    let pages = every_page(&app, &list, 2).await;
    assert_eq!(
        pages,
        [refunds[..2].to_vec(), refunds[2..].to_vec()],
        "oldest first"
    );
    let (_, first) = page(&app, &list).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 3, "default limit");
    assert_eq!(first["has_more"], false);

    let history = format!("/v1/checkouts/{id}/events");
    let (_, all) = page(&app, &format!("{history}?limit=100")).await;
    let entries = all["data"].as_array().unwrap();
    assert!(entries.len() >= 2, "{all}");
    assert_eq!(entries[0]["to"], "created", "oldest first: {all}");
    let ids: Vec<String> = entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        every_page(&app, &history, 1).await.concat(),
        ids,
        "one by one, the same entries"
    );
}

#[tokio::test]
async fn a_bad_cursor_or_limit_under_a_checkout_is_refused_naming_it() {
    let app = spawn_app().await;
    let checkout = app.create("374500000000015").await;
    let id = checkout["id"].as_str().unwrap();
    for list in ["refunds", "events"] {
        for (query, param) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            (
                "starting_after=re_0193a1b2c3d4e5f60718293a4b5c6d7e",
                "starting_after",
            ),
            ("starting_after=nothing", "starting_after"),
            ("ending_before=x", "ending_before"),
        ] {
            let (status, body) = page(&app, &format!("/v1/checkouts/{id}/{list}?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{list}?{query}: {body}");
            assert_eq!(body["error"]["param"], param, "{list}?{query}: {body}");
        }
    }
}
