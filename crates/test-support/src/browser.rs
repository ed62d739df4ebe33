//! Real headless Chromium for the browser tests, driven through `chromedriver` (WebDriver) with
//! `fantoccini`. Each `Browser` has its own chromedriver on a free port and a fresh profile, and
//! cleans both up on drop. Missing binaries fail the test with what to run; nothing is skipped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    pub async fn start() -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: run ./scripts/test, which installs chromium and chromium-driver"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!("cgw-chromium-{}", uuid::Uuid::new_v4()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                         "--window-size=1200,1000",
                         format!("--user-data-dir={}", profile.display())]
            }),
        );
        let mut last_error = None;
        for _ in 0..100 {
            match ClientBuilder::rustls()
                .unwrap()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        profile,
                    };
                }
                Err(e) => {
                    last_error = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("no chromedriver session: {last_error:?}");
    }

    /// Waits until the browser's URL starts with `prefix` (navigation is asynchronous).
    pub async fn wait_for_url(&self, prefix: &str) -> url::Url {
        let mut last = None;
        // Thirty seconds: a loaded machine's 3-D Secure round trip takes a few.
        for _ in 0..600 {
            let url = self.client.current_url().await.unwrap();
            if url.as_str().starts_with(prefix) {
                return url;
            }
            last = Some(url);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the browser never reached {prefix}; it is on {last:?}");
    }

    /// The page's text, once it has a body to read: just after a navigation the old body is
    /// stale and the new one may not be parsed yet, which is "not yet", not a failure.
    pub async fn text(&self) -> String {
        let mut last = None;
        for _ in 0..600 {
            let read = match self.client.find(fantoccini::Locator::Css("body")).await {
                Ok(body) => body.text().await,
                Err(e) => Err(e),
            };
            match read {
                Ok(text) => return text,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never had a body to read: {last:?}");
    }

    /// A PNG of the page, written to `screenshots/NAME.png` under the cargo target directory in
    /// use ([`crate::artefacts`]) for a person to look at.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = crate::artefacts::artefact_dir("screenshots");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(self) {
        let Browser {
            client,
            mut driver,
            profile,
        } = self;
        let _ = client.close().await;
        let _ = driver.kill();
        let _ = driver.wait();
        let _ = std::fs::remove_dir_all(profile);
    }
}
