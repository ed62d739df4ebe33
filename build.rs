//! Release builds of the binary on Linux: the debug information that the release profile keeps
//! (symbols, and line tables for this workspace's crates: see Cargo.toml) is linked
//! zlib-compressed, a third of its size. Rust's backtraces, gdb and addr2line read compressed
//! sections as they are.
fn main() {
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
