//! Locate binaries of other workspace packages from an integration test.
//!
//! `CARGO_BIN_EXE_*` only covers the test's own package, so we look next to the test executable
//! (`target/<profile>/deps/..`). `cargo test --workspace` builds the binaries of packages that have
//! integration tests of their own (`cc-executor-server` and `cc-executor-mcp` both have) before
//! it runs the tests.

use std::path::PathBuf;

/// Path of the workspace binary `name` (e.g. `"cc-executor-server"`), built by `cargo test --workspace`.
///
/// Panics with a clear message when it has not been built.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace` (or `cargo build -p {name}` first)",
        path.display()
    );
    path
}

/// Path of the example `name` of the `examples` package, built by `cargo test --workspace`.
///
/// Panics with a clear message when it has not been built.
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace` (or `cargo build -p examples --examples` first)",
        path.display()
    );
    path
}
