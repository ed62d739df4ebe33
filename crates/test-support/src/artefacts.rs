//! Where tests write what a person may want to look at afterwards (screenshots) or what is
//! worth keeping between runs (the Python SDK's venv): under the cargo target directory in use,
//! never in the repository's own `target/` when `CARGO_TARGET_DIR` (or `build.target-dir`)
//! points elsewhere.

use std::path::{Path, PathBuf};

/// The cargo target directory the running test binary was built into: the nearest ancestor of
/// the binary that holds cargo's `CACHEDIR.TAG` (cargo writes one at the root of every target
/// directory, wherever it is configured), else `CARGO_TARGET_DIR`, else `target/` beside the
/// workspace's `Cargo.toml`.
pub fn target_dir() -> PathBuf {
    let from_binary = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .skip(1)
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
            .map(Path::to_path_buf)
    });
    from_binary
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// `target_dir()/name`, created if missing.
pub fn artefact_dir(name: &str) -> PathBuf {
    let dir = target_dir().join(name);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artefacts_go_under_the_target_directory_this_binary_was_built_in() {
        let exe = std::env::current_exe().unwrap();
        let target = target_dir();
        assert!(
            exe.starts_with(&target),
            "{} is not under {}",
            exe.display(),
            target.display()
        );
        assert!(
            target.join("CACHEDIR.TAG").is_file(),
            "{}",
            target.display()
        );
        if let Some(configured) = std::env::var_os("CARGO_TARGET_DIR") {
            let configured = std::fs::canonicalize(configured).unwrap();
            assert_eq!(std::fs::canonicalize(&target).unwrap(), configured);
        }
        let screenshots = artefact_dir("screenshots");
        assert!(screenshots.starts_with(&target) && screenshots.is_dir());
    }
}
