//! A `redis-server` that speaks TLS (`rediss://`), with a throw-away CA made by `openssl`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::redis_server::{Running, free_port, launch_with, shut_down};

pub struct TestTlsRedis {
    url: String,
    ca_file: PathBuf,
    node: Mutex<Option<Running>>,
}

impl TestTlsRedis {
    /// Starts a server whose TLS port presents a certificate for `127.0.0.1` signed by a fresh
    /// CA; the plain port is only used to see that it is up. Files are removed when it stops.
    pub fn start() -> TestTlsRedis {
        let dir = std::env::temp_dir().join(format!("cgw-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
        make_certificates(&dir);
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let tls_port = free_port();
        let extra = [
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            path("server.crt"),
            "--tls-key-file".to_owned(),
            path("server.key"),
            "--tls-ca-cert-file".to_owned(),
            path("ca.crt"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let node = launch_with(free_port(), &extra, Some(&dir))
            .unwrap_or_else(|e| panic!("could not start a TLS redis-server: {e}"));
        TestTlsRedis {
            url: format!("rediss://127.0.0.1:{tls_port}"),
            ca_file: dir.join("ca.crt"),
            node: Mutex::new(Some(node)),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}

impl Drop for TestTlsRedis {
    fn drop(&mut self) {
        let node = self
            .node
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(node) = node {
            shut_down(node);
        }
    }
}

fn make_certificates(dir: &Path) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run_openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "1",
                "-subj",
                "/CN=cgw-test-ca",
            ],
        ]
        .concat(),
    );
    run_openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    run_openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
}

fn run_openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl not found ({e}): install openssl to run TLS tests"));
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
