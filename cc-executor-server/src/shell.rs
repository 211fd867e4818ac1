//! The shell that runs commands (`<shell> -c <command>`), resolved once when the service starts.

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Used when `PATH` is not set.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The shell to run commands with, as an absolute path.
///
/// `name` is a program name looked up on `PATH`, or a path (it contains a `/`). Without one:
/// `bash` when it is on `PATH` (the commands this service receives are mostly written for
/// bash), else `sh`. A shell that cannot be found is an error naming it, so that the service
/// stops at start instead of failing every run.
pub(crate) fn resolve(name: Option<&Path>) -> io::Result<PathBuf> {
    let path = std::env::var_os("PATH");
    let path = path.as_deref().unwrap_or(OsStr::new(DEFAULT_PATH));
    match name {
        Some(name) => resolve_in(name, path),
        None => resolve_in(Path::new("bash"), path)
            .or_else(|_| resolve_in(Path::new("sh"), path))
            .map_err(|_| not_found("no shell found: neither bash nor sh is on PATH".into())),
    }
}

fn resolve_in(name: &Path, path: &OsStr) -> io::Result<PathBuf> {
    if name.as_os_str().is_empty() {
        return Err(not_found("the shell name is empty".into()));
    }
    if name.as_os_str().as_encoded_bytes().contains(&b'/') {
        let full = std::path::absolute(name)?;
        return if is_executable(&full) {
            Ok(full)
        } else if full.exists() {
            Err(not_found(format!(
                "shell {} is not an executable file",
                name.display()
            )))
        } else {
            Err(not_found(format!(
                "shell {} does not exist",
                name.display()
            )))
        };
    }
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| not_found(format!("shell {} not found on PATH", name.display())))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn not_found(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_errors() {
        let dir = tempfile_dir();
        let exe = dir.join("mysh");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.join("plain");
        std::fs::write(&plain, "").unwrap();
        let path = std::env::join_paths(["relative/dir".as_ref(), dir.as_path()]).unwrap();

        assert_eq!(resolve_in(Path::new("mysh"), &path).unwrap(), exe);
        assert_eq!(resolve_in(&exe, &path).unwrap(), exe);
        let e = resolve_in(Path::new("nosuchshell"), &path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "shell nosuchshell not found on PATH");
        let e = resolve_in(Path::new("plain"), &path).unwrap_err();
        assert!(e.to_string().contains("plain"), "{e}");
        let e = resolve_in(&plain, &path).unwrap_err();
        assert!(e.to_string().contains("not an executable"), "{e}");
        let e = resolve_in(&dir.join("nope"), &path).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(resolve_in(Path::new(""), &path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cc-executor-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
