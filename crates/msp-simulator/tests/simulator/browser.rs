//! Point 5 in a real browser: `customer_verification.html`, served from another origin (as the
//! gateway serves it), reaches the challenge page; `Y` lands on `redirect_url`.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};
use fantoccini::Locator;
use serde_json::json;

use crate::common::browser::Browser;
use crate::helpers::*;

#[tokio::test]
async fn the_verification_html_served_from_another_origin_reaches_the_challenge() {
    let sim = spawn().await;

    // The other origin: serves the HTML as it is, and is where the shopper returns.
    let html = web::Data::new(std::sync::Mutex::new(String::new()));
    let served = html.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let shop = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(served.clone())
            .route(
                "/pay",
                web::get().to(|h: web::Data<std::sync::Mutex<String>>| async move {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(h.lock().unwrap().clone())
                }),
            )
            .route(
                "/return",
                web::get().to(|| async { HttpResponse::Ok().body("back at the shop") }),
            )
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .disable_signals()
    .run();
    let shop_handle = server.handle();
    tokio::spawn(server);

    let id = order_id();
    let mut body = order_body(&id, "4111111111111111");
    body["payment_options"]["redirect_url"] = json!(format!("{shop}/return?from=msp"));
    let (_, created) = sim.create(&body).await;
    let payment_url = created["data"]["payment_url"].as_str().unwrap().to_owned();
    *html.lock().unwrap() = created["data"]["customer_verification"]["html"]
        .as_str()
        .unwrap()
        .to_owned();

    let browser = Browser::start().await;
    let client = &browser.client;

    client.goto(&format!("{shop}/pay")).await.unwrap();
    browser.wait_for_url(&payment_url).await;
    let source = client.source().await.unwrap();
    assert!(source.contains("Confirm your payment"), "{source}");

    client
        .find(Locator::Css("button[value='Y']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let landed = browser.wait_for_url(&format!("{shop}/return")).await;
    let pairs: Vec<(String, String)> = landed.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("from".into(), "msp".into())), "{landed}");
    assert!(
        pairs.contains(&("transactionid".into(), id.clone())),
        "{landed}"
    );
    assert_eq!(sim.order(&id).await["status"], "completed");

    browser.close().await;
    shop_handle.stop(false).await;
    sim.handle.stop().await;
}
