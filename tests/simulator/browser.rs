//! Point 5 in a real browser: `customer_verification.html`, served from another origin (as the
//! gateway serves it), reaches the challenge page; `Y` lands on `redirect_url`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_url(client: &fantoccini::Client, prefix: &str) -> url::Url {
    let mut last = None;
    for _ in 0..200 {
        let url = client.current_url().await.unwrap();
        if url.as_str().starts_with(prefix) {
            return url;
        }
        last = Some(url);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the browser never reached {prefix}; it is on {last:?}");
}

#[tokio::test]
async fn the_verification_html_served_from_another_origin_reaches_the_challenge() {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: run ./scripts/test, which installs chromium and chromium-driver"
        );
    }
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

    let port = free_port();
    let _driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = std::env::temp_dir().join(format!("sim-chromium-{}", uuid::Uuid::new_v4()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let client = client.expect("a chromedriver session");

    client.goto(&format!("{shop}/pay")).await.unwrap();
    wait_for_url(&client, &payment_url).await;
    let source = client.source().await.unwrap();
    assert!(source.contains("3-D Secure challenge"), "{source}");

    client
        .find(Locator::Css("button[value='Y']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let landed = wait_for_url(&client, &format!("{shop}/return")).await;
    let pairs: Vec<(String, String)> = landed.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("from".into(), "msp".into())), "{landed}");
    assert!(
        pairs.contains(&("transactionid".into(), id.clone())),
        "{landed}"
    );
    assert_eq!(sim.order(&id).await["status"], "completed");

    let _ = client.close().await;
    shop_handle.stop(false).await;
    sim.handle.stop().await;
    let _ = std::fs::remove_dir_all(profile);
}
