//! Tools from other ecosystems that some tests drive, to hold the gateway and the simulator
//! against what real clients do: MultiSafepay's official Python SDK, the Standard Webhooks
//! libraries, API client generators. Each set is installed once, under the cargo target
//! directory in use (so a fresh clone installs it on its first run, and later runs reuse it),
//! from PyPI or the npm registry. A missing `python3` or `npm`, or a registry that cannot be
//! reached, fails the test with a message: it is never skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// One installation at a time in this process (tests of one binary run on threads).
static INSTALLING: Mutex<()> = Mutex::new(());

/// A Python venv named `name` holding `packages` (pip requirement strings, pinned), made once;
/// answers the venv's `python`. Blocking: call it from `spawn_blocking` in async tests.
pub fn python_venv(name: &str, packages: &[&str]) -> PathBuf {
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = crate::artefacts::target_dir().join("tools").join(name);
    let python = venv.join("bin/python");
    let ready = venv.join(marker(packages));
    if !ready.exists() {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv (install python3 and python3-venv)",
        );
        run(
            Command::new(&python)
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .args(packages),
            &format!("pip install {} (needs PyPI)", packages.join(" ")),
        );
        std::fs::write(&ready, b"").unwrap();
    }
    python
}

/// A directory named `name` holding `node_modules` with `packages` (npm specs, pinned), made
/// once; answers the directory (run `node` there, or `node_modules/.bin/…`). Blocking.
pub fn npm_packages(name: &str, packages: &[&str]) -> PathBuf {
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = crate::artefacts::target_dir().join("tools").join(name);
    let ready = dir.join(marker(packages));
    if !ready.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        if !dir.join("package.json").exists() {
            std::fs::write(
                dir.join("package.json"),
                br#"{"name": "gateway-test-tools", "private": true}"#,
            )
            .unwrap();
        }
        run(
            Command::new("npm")
                .current_dir(&dir)
                .args(["install", "--no-audit", "--no-fund", "--silent"])
                .args(packages),
            &format!(
                "npm install {} (needs node, npm and the npm registry)",
                packages.join(" ")
            ),
        );
        std::fs::write(&ready, b"").unwrap();
    }
    dir
}

fn marker(packages: &[&str]) -> String {
    let mut name: String = packages
        .join("+")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(200);
    format!("{name}.ok")
}

fn run(command: &mut Command, what: &str) {
    let status = command.status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "{what} failed: {status:?}"
    );
}
