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
    built(profile_dir(), name, &format!("cargo build -p {name}"))
}

/// Path of the example `name` of the `examples` package, built by `cargo test --workspace`.
///
/// Panics with a clear message when it has not been built.
pub fn example_path(name: &str) -> PathBuf {
    let examples = profile_dir().join("examples");
    built(examples, name, "cargo build -p examples --examples")
}

/// `target/<profile>`: the test binary runs from `target/<profile>/deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe
        .parent()
        .expect("test binary lives in target/<profile>/deps");
    deps.parent().expect("target/<profile>").to_path_buf()
}

/// The executable `name` in `dir`, or a panic saying how to build it.
fn built(dir: PathBuf, name: &str, build: &str) -> PathBuf {
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace` (or `{build}` first)",
        path.display()
    );
    path
}
