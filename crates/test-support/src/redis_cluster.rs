//! A throw-away three-master Redis Cluster for tests, on free loopback ports, removed on drop.
//!
//! [`TestCluster::shared`] starts one per test binary (cluster creation takes a few seconds);
//! tests isolate themselves with key prefixes as on a single server. With
//! `TEST_REDIS_CLUSTER_URLS` (comma-separated seed nodes) set, that cluster is used instead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::redis_server::{Running, free_port, launch_with, shut_down};

const MASTERS: usize = 3;
const READY_WITHIN: Duration = Duration::from_secs(30);

pub struct TestCluster {
    urls: Vec<String>,
    nodes: Mutex<Vec<Running>>,
}

static SHARED: LazyLock<TestCluster> = LazyLock::new(TestCluster::start);

impl TestCluster {
    pub fn shared() -> &'static TestCluster {
        &SHARED
    }

    pub fn start() -> TestCluster {
        if let Ok(urls) = std::env::var("TEST_REDIS_CLUSTER_URLS")
            && !urls.trim().is_empty()
        {
            return TestCluster {
                urls: urls.split(',').map(|u| u.trim().to_owned()).collect(),
                nodes: Mutex::new(Vec::new()),
            };
        }
        let mut cluster = TestCluster {
            urls: Vec::new(),
            nodes: Mutex::new(Vec::new()),
        };
        let mut ports = Vec::new();
        for _ in 0..MASTERS {
            let (port, node) = start_node();
            ports.push(port);
            cluster.nodes.get_mut().unwrap().push(node);
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| {
                panic!("redis-cli not found ({e}): run ./scripts/test, which installs it")
            });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let started = Instant::now();
        while !ports.iter().all(|p| cluster_ok(*p)) {
            assert!(
                started.elapsed() < READY_WITHIN,
                "the test cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster.urls = ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        cluster
    }

    /// Seed node URLs, as `redis.cluster_urls` takes them.
    pub fn urls(&self) -> Vec<String> {
        self.urls.clone()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let nodes = std::mem::take(self.nodes.get_mut().unwrap_or_else(|p| p.into_inner()));
        for node in nodes {
            shut_down(node);
        }
    }
}

/// A cluster node also needs its bus port (port + 10000) free, and a directory of its own for
/// its `nodes.conf`, removed when the node stops.
fn start_node() -> (u16, Running) {
    let mut last_error = String::new();
    for _ in 0..20 {
        let port = free_port();
        if port > 55_000 || TcpListener::bind(("127.0.0.1", port + 10_000)).is_err() {
            continue;
        }
        let dir = std::env::temp_dir().join(format!(
            "cgw-cluster-node-{}",
            uuid::Uuid::new_v4().simple()
        ));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("could not create {}: {e}", dir.display());
        }
        let extra = [
            "--cluster-enabled".to_owned(),
            "yes".to_owned(),
            "--cluster-config-file".to_owned(),
            "nodes.conf".to_owned(),
            "--dir".to_owned(),
            dir.to_string_lossy().into_owned(),
        ];
        match launch_with(port, &extra, Some(&dir)) {
            Ok(node) => return (port, node),
            Err(e) => last_error = e,
        }
    }
    panic!("could not start a cluster node: {last_error}");
}

fn cluster_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"CLUSTER INFO\r\n").is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.contains("cluster_state:ok") {
            return true;
        }
        if text.contains("cluster_state:fail") {
            return false;
        }
    }
    false
}
