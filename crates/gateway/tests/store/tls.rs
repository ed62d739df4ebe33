//! `rediss://`: the store speaks TLS and checks the server's certificate against the system's
//! trust store (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured).

use std::process::Command;

use gateway::store::redis::RedisStore;
use gateway::store::{Cause, Records, StoreError};

use crate::common::redis_server::unique_prefix;
use crate::common::redis_tls::TestTlsRedis;
use crate::fixtures::{checkout, created_event};
use crate::{LONG, redis_settings};

/// Set only in the child process that the trust test starts (see below).
const CHILD_URL: &str = "CGW_TEST_TLS_URL";

#[tokio::test]
async fn rediss_refuses_a_server_whose_certificate_is_not_trusted() {
    let server = TestTlsRedis::start();
    let result = RedisStore::connect(redis_settings(server.url(), &unique_prefix(), LONG)).await;
    match result {
        Err(e @ StoreError::Unavailable { .. }) => {
            let message = e.to_string();
            assert!(
                message.to_lowercase().contains("certificate"),
                "should fail on the certificate: {message}"
            );
            assert!(
                matches!(
                    e,
                    StoreError::Unavailable {
                        source: Some(Cause::Redis(_)),
                        ..
                    }
                ),
                "the Redis error is kept: {e:?}"
            );
        }
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("connected to a server signed by an unknown CA"),
    }
}

/// Trusting the test CA means setting `SSL_CERT_FILE`, which must not leak into the other tests
/// of this process: so the test runs itself again as a child process with that variable set.
#[tokio::test]
async fn rediss_works_when_the_server_certificate_is_trusted() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        let store = RedisStore::connect(redis_settings(&url, &unique_prefix(), LONG))
            .await
            .expect("connect over TLS");
        let id = gateway::domain::checkout::CheckoutId::generate();
        store
            .insert(&checkout(&id), &created_event())
            .await
            .unwrap();
        assert_eq!(store.get(&id).await.unwrap().unwrap().version, 1);
        return;
    }
    let server = TestTlsRedis::start();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tls::rediss_works_when_the_server_certificate_is_trusted",
            "--nocapture",
        ])
        .env(CHILD_URL, server.url())
        .env("SSL_CERT_FILE", server.ca_file())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the TLS child test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
