//! Reading the bearer token from a file, so that it stays out of the process list.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a token file could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenFileError {
    /// The file could not be read.
    Unreadable(PathBuf, std::io::Error),
    /// The file is empty (or holds only a newline).
    Empty(PathBuf),
    /// The token holds whitespace, a control character or non-UTF-8 bytes, which an
    /// `Authorization` header cannot carry as one token.
    Malformed(PathBuf),
}

impl fmt::Display for TokenFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenFileError::Unreadable(p, e) => {
                write!(f, "cannot read the token file {}: {e}", p.display())
            }
            TokenFileError::Empty(p) => write!(f, "the token file {} is empty", p.display()),
            TokenFileError::Malformed(p) => write!(
                f,
                "the token file {} must hold one line of visible ASCII characters \
                 (no spaces or control characters)",
                p.display()
            ),
        }
    }
}

impl std::error::Error for TokenFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenFileError::Unreadable(_, e) => Some(e),
            _ => None,
        }
    }
}

/// The token held in `path`: its contents with one trailing newline (`\n` or `\r\n`) removed.
///
/// Unlike `--token`, which every local user can read in `/proc/PID/cmdline`, a file can be
/// kept readable by its owner only.
pub fn read_token_file(path: impl AsRef<Path>) -> Result<String, TokenFileError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| TokenFileError::Unreadable(path.into(), e))?;
    let text = String::from_utf8(bytes).map_err(|_| TokenFileError::Malformed(path.into()))?;
    let token = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if token.is_empty() {
        return Err(TokenFileError::Empty(path.into()));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenFileError::Malformed(path.into()));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(contents: &[u8]) -> Result<String, TokenFileError> {
        let dir = std::env::temp_dir().join(format!("token-test-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, contents).unwrap();
        let r = read_token_file(&dir);
        std::fs::remove_file(&dir).unwrap();
        r
    }

    #[test]
    fn one_trailing_newline_is_trimmed() {
        assert_eq!(read(b"s3cret").unwrap(), "s3cret");
        assert_eq!(read(b"s3cret\n").unwrap(), "s3cret");
        assert_eq!(read(b"s3cret\r\n").unwrap(), "s3cret");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        for empty in [&b""[..], b"\n", b"\r\n"] {
            assert!(
                matches!(read(empty), Err(TokenFileError::Empty(_))),
                "{empty:?}"
            );
        }
        for bad in [
            &b"s3cret\n\n"[..],
            b"two words",
            b" s3cret",
            b"s\tx",
            b"\xff\xfe",
        ] {
            let e = read(bad).unwrap_err();
            assert!(matches!(e, TokenFileError::Malformed(_)), "{bad:?}");
            assert!(e.to_string().contains("token file"), "{e}");
        }
        let e = read_token_file("/nonexistent/token").unwrap_err();
        assert!(matches!(e, TokenFileError::Unreadable(..)));
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");
    }
}
