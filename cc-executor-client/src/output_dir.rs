//! Where whole outputs are saved, who can read them, and how long they stay.
//!
//! A run's whole output (the full text behind a cut result, a background job's output) can hold
//! tokens, keys or customer data. [`OutputFiles`] is the one policy for these files:
//!
//! - **A private folder.** By default `$XDG_RUNTIME_DIR/cc-executor` when `XDG_RUNTIME_DIR` is set,
//!   else `cc-executor-<uid>` in the system temp dir ([`default_dir`]); or a folder of the
//!   caller's choosing. It is created `0700`, and refused ([`OutputDirError`]) when it exists but
//!   is not a directory owned by this user that no group or other user can open — a symbolic link
//!   is refused too, so another account cannot pre-create the folder and receive the files.
//! - **Private files.** Each file is new (`O_CREAT | O_EXCL`), mode `0600`, opened without
//!   following a symbolic link (`O_NOFOLLOW`), under a unique name.
//! - **Retention.** A job's file is deleted when the job is released (evicted from its registry),
//!   unless job outputs are kept ([`OutputFiles::keep_job_outputs`]); [`OutputFiles::sweep`]
//!   removes cut-output files older than the retention period (24 hours by default) and job files
//!   of earlier processes. Call it at start and every [`SWEEP_INTERVAL`].
//!
//! ```
//! use cc_executor_client::output_dir::{OutputFiles, OutputKind};
//! use std::io::Write;
//! use std::os::unix::fs::PermissionsExt;
//!
//! # let tmp = tempfile::tempdir().unwrap();
//! let files = OutputFiles::new(tmp.path().join("outputs"));
//! let mut out = files.create(OutputKind::Output)?;
//! out.file.write_all(b"the whole output\n")?;
//! let mode = std::fs::metadata(&out.path)?.permissions().mode();
//! assert_eq!(mode & 0o777, 0o600);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How long cut-output files are kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How often a long-lived program should call [`OutputFiles::sweep`].
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// What a file holds; it sets the file's name and how long it stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutputKind {
    /// The whole combined output of a run whose returned output was cut (`output-….log`); removed
    /// by [`OutputFiles::sweep`] once older than the retention period.
    Output,
    /// The whole text of a long answer, e.g. a Claude result (`answer-….txt`); removed like
    /// [`OutputKind::Output`].
    Answer,
    /// A background job's whole output (`job-….log`); deleted when the job is released
    /// ([`OutputFiles::release`]) unless job outputs are kept.
    Job,
}

impl OutputKind {
    const ALL: [OutputKind; 3] = [OutputKind::Output, OutputKind::Answer, OutputKind::Job];

    fn prefix(self) -> &'static str {
        match self {
            OutputKind::Output => "output-",
            OutputKind::Answer => "answer-",
            OutputKind::Job => "job-",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            OutputKind::Answer => ".txt",
            OutputKind::Output | OutputKind::Job => ".log",
        }
    }

    /// The kind of a file named by this policy (`<prefix><digits and dashes><extension>`); `None`
    /// for any other file, which the sweep leaves alone.
    fn of_name(name: &str) -> Option<OutputKind> {
        OutputKind::ALL.into_iter().find(|kind| {
            name.strip_prefix(kind.prefix())
                .and_then(|rest| rest.strip_suffix(kind.extension()))
                .is_some_and(|stem| {
                    !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                })
        })
    }
}

/// Why the output folder or an output file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputDirError {
    /// The folder is a symbolic link (it could point anywhere another user chose).
    #[error("refusing the output folder {}: it is a symbolic link; remove it or use another folder", .path.display())]
    Symlink {
        /// The folder.
        path: PathBuf,
    },
    /// Something other than a directory is at the folder's path.
    #[error("refusing the output folder {}: it is not a directory; remove it or use another folder", .path.display())]
    NotADirectory {
        /// The folder.
        path: PathBuf,
    },
    /// The folder belongs to another user, who could read every file written there.
    #[error("refusing the output folder {}: it belongs to uid {owner}, not to this user (uid {uid}); remove it or use another folder", .path.display())]
    NotOwned {
        /// The folder.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective user.
        uid: u32,
    },
    /// The folder is open to the group or other users.
    #[error("refusing the output folder {}: its mode {:03o} lets other users in; make it private (chmod 700) or use another folder", .path.display(), .mode & 0o777)]
    NotPrivate {
        /// The folder.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Creating or inspecting the folder or a file failed.
    #[error("cannot use {}: {source}", .path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

/// A new private file, open for writing.
#[derive(Debug)]
#[non_exhaustive]
pub struct OutputFile {
    /// Where it is.
    pub path: PathBuf,
    /// The open file (mode `0600`).
    pub file: File,
}

/// The policy for output files: a private folder, private files, retention. Cheap to clone; the
/// clones share the set of job files in use.
#[derive(Debug, Clone)]
pub struct OutputFiles {
    dir: PathBuf,
    keep_jobs: bool,
    retention: Duration,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Job files in use by this process: the sweep leaves them alone.
    live: Mutex<HashSet<PathBuf>>,
    /// Makes each name unique within the process.
    counter: AtomicU64,
}

impl Default for OutputFiles {
    /// The policy in [`default_dir`].
    fn default() -> Self {
        OutputFiles::new(default_dir())
    }
}

impl OutputFiles {
    /// A policy writing into `dir` (created when missing, checked before every file), keeping
    /// cut-output files for [`DEFAULT_RETENTION`] and deleting job files when their job is
    /// released. Touches nothing on disk until a file is created or swept.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        OutputFiles {
            dir: dir.into(),
            keep_jobs: false,
            retention: DEFAULT_RETENTION,
            shared: Arc::default(),
        }
    }

    /// Keep job files when their job is released (and never sweep them).
    pub fn keep_job_outputs(mut self, keep: bool) -> Self {
        self.keep_jobs = keep;
        self
    }

    /// How long cut-output files (and job files of earlier processes) are kept.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether job files outlive their job.
    pub fn keeps_job_outputs(&self) -> bool {
        self.keep_jobs
    }

    /// How long cut-output files are kept.
    pub fn retention_period(&self) -> Duration {
        self.retention
    }

    /// Create the folder (`0700`, with any missing parents) when it is missing, then check that it
    /// is private ([`check_dir`]).
    pub fn prepare(&self) -> Result<&Path, OutputDirError> {
        let dir = self.dir();
        match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            Ok(()) => {}
            // A symlink or a file in the way: let the check name it.
            Err(_) if dir.symlink_metadata().is_ok() => {}
            Err(source) => {
                return Err(OutputDirError::Io {
                    path: dir.to_owned(),
                    source,
                })
            }
        }
        check_dir(dir)?;
        Ok(dir)
    }

    /// A new private file of `kind` in the (checked) folder.
    pub fn create(&self, kind: OutputKind) -> Result<OutputFile, OutputDirError> {
        let dir = self.prepare()?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let pid = std::process::id();
        // The name is unique within this process; `create_new` makes sure nothing is reused, so
        // try a few names in the unlikely case one is taken.
        let mut last = None;
        for _ in 0..16 {
            let n = self.shared.counter.fetch_add(1, Ordering::Relaxed) + 1;
            let name = format!("{}{stamp}-{pid}-{n}{}", kind.prefix(), kind.extension());
            let path = dir.join(name);
            match open_new(&path) {
                Ok(file) => {
                    if kind == OutputKind::Job {
                        lock(&self.shared.live).insert(path.clone());
                    }
                    return Ok(OutputFile { path, file });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((path, e)),
                Err(source) => return Err(OutputDirError::Io { path, source }),
            }
        }
        let (path, source) = last.expect("at least one attempt");
        Err(OutputDirError::Io { path, source })
    }

    /// The job that wrote to `path` is gone: delete its file, unless job outputs are kept.
    pub fn release(&self, path: &Path) {
        lock(&self.shared.live).remove(path);
        if self.keep_jobs {
            return;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot delete {}: {e}", path.display()),
        }
    }

    /// Remove this policy's files that have outlived the retention period: cut outputs and
    /// answers, and (unless job outputs are kept) job files not in use by this process. Other
    /// files in the folder are left alone. Returns how many were removed.
    pub fn sweep(&self) -> Result<usize, OutputDirError> {
        let dir = self.prepare()?;
        let io_err = |source| OutputDirError::Io {
            path: dir.to_owned(),
            source,
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in std::fs::read_dir(dir).map_err(io_err)? {
            let Ok(entry) = entry else { continue };
            let Some(kind) = entry.file_name().to_str().and_then(OutputKind::of_name) else {
                continue;
            };
            let path = entry.path();
            if kind == OutputKind::Job
                && (self.keep_jobs || lock(&self.shared.live).contains(&path))
            {
                continue;
            }
            // `DirEntry::metadata` does not follow a symlink: only plain files are removed.
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|at| now.duration_since(at).ok());
            if meta.is_file() && age.is_some_and(|age| age >= self.retention) {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::warn!("cannot delete {}: {e}", path.display()),
                }
            }
        }
        Ok(removed)
    }

    /// Write `text` whole to a new private file of `kind`; its path. A file that could not be
    /// written whole is removed.
    pub fn save(&self, kind: OutputKind, text: &str) -> Result<PathBuf, OutputDirError> {
        use std::io::Write;
        let mut out = self.create(kind)?;
        match out.file.write_all(text.as_bytes()) {
            Ok(()) => Ok(out.path),
            Err(source) => {
                let _ = std::fs::remove_file(&out.path);
                Err(OutputDirError::Io {
                    path: out.path,
                    source,
                })
            }
        }
    }

    /// Remove old files now ([`OutputFiles::sweep`]), saying why when the folder is refused; the
    /// number removed.
    pub(crate) fn sweep_and_log(&self) -> usize {
        match self.sweep() {
            Ok(0) => 0,
            Ok(n) => {
                tracing::info!("removed {n} old output files from {}", self.dir().display());
                n
            }
            Err(e) => {
                tracing::warn!("{e}; whole outputs will not be saved to files");
                0
            }
        }
    }
}

/// Why a whole output is not in a file, as a sentence.
pub(crate) fn unsaved(why: impl std::fmt::Display) -> String {
    format!("The whole output was not saved to a file: {why}.")
}

/// `$XDG_RUNTIME_DIR/cc-executor` when `XDG_RUNTIME_DIR` is set (to an absolute path), else
/// `cc-executor-<uid>` in the system temp dir.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(runtime) if runtime.is_absolute() => runtime.join("cc-executor"),
        _ => std::env::temp_dir().join(format!("cc-executor-{}", current_uid())),
    }
}

/// Check that `dir` is a directory (not a symbolic link) owned by this user, with no access for
/// the group or other users.
pub fn check_dir(dir: &Path) -> Result<(), OutputDirError> {
    let path = || dir.to_owned();
    let meta = dir
        .symlink_metadata()
        .map_err(|source| OutputDirError::Io {
            path: path(),
            source,
        })?;
    if meta.file_type().is_symlink() {
        return Err(OutputDirError::Symlink { path: path() });
    }
    if !meta.is_dir() {
        return Err(OutputDirError::NotADirectory { path: path() });
    }
    let uid = current_uid();
    if meta.uid() != uid {
        return Err(OutputDirError::NotOwned {
            path: path(),
            owner: meta.uid(),
            uid,
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(OutputDirError::NotPrivate {
            path: path(),
            mode: meta.mode(),
        });
    }
    Ok(())
}

/// Open `path` for writing as a private file (mode `0600`), created or truncated, without
/// following a symbolic link; its missing parent folders are created `0700`. For files at a path
/// of the caller's choosing; [`OutputFiles::create`] makes new files in a checked folder.
pub fn open_private(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // An existing file keeps its mode through `open`: make it private too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Create `path` as a new private file: fails if anything, a symbolic link included, is there.
fn open_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded set stays consistent through a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn creates_a_private_folder_and_private_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/outputs");
        let files = OutputFiles::new(&dir);
        let mut out = files.create(OutputKind::Job).unwrap();
        out.file.write_all(b"x").unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&out.path), 0o600);
        assert_eq!(out.path.parent(), Some(dir.as_path()));
        let name = out.path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("job-") && name.ends_with(".log"), "{name}");
        let other = files.create(OutputKind::Job).unwrap();
        assert_ne!(other.path, out.path);
    }

    #[test]
    fn refuses_a_folder_open_to_others() {
        let tmp = tempfile::tempdir().unwrap();
        for bits in [0o750, 0o705, 0o777] {
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(bits)).unwrap();
            let err = OutputFiles::new(tmp.path()).create(OutputKind::Output);
            match err {
                Err(OutputDirError::NotPrivate { mode, .. }) => assert_eq!(mode & 0o777, bits),
                other => panic!("{bits:o}: expected NotPrivate, got {other:?}"),
            }
        }
        let text = check_dir(tmp.path()).unwrap_err().to_string();
        assert!(
            text.contains("mode 777") && text.contains("chmod 700"),
            "{text}"
        );
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn refuses_a_symlink_and_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        symlink(&target, &link).unwrap();
        let files = OutputFiles::new(&link);
        assert!(matches!(
            files.create(OutputKind::Output),
            Err(OutputDirError::Symlink { .. })
        ));
        assert!(matches!(files.sweep(), Err(OutputDirError::Symlink { .. })));
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            OutputFiles::new(&file).create(OutputKind::Output),
            Err(OutputDirError::NotADirectory { .. })
        ));
    }

    #[test]
    fn refuses_a_folder_of_another_user() {
        if current_uid() != 0 {
            // Only root can give a folder away.
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("foreign");
        DirBuilder::new().mode(0o700).create(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        match OutputFiles::new(&dir).create(OutputKind::Output) {
            Err(e @ OutputDirError::NotOwned { owner: 65534, .. }) => {
                assert!(e.to_string().contains("belongs to uid 65534"), "{e}");
            }
            other => panic!("expected NotOwned, got {other:?}"),
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn private_open_does_not_follow_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, "untouched").unwrap();
        let link = tmp.path().join("out.log");
        symlink(&target, &link).unwrap();
        assert!(open_private(&link).is_err());
        assert!(open_new(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");

        let plain = tmp.path().join("plain.log");
        std::fs::write(&plain, "old").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_private(&plain).unwrap();
        assert_eq!(mode(&plain), 0o600);
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "");
    }

    #[test]
    fn release_deletes_a_job_file_unless_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let files = OutputFiles::new(tmp.path().join("o"));
        let out = files.create(OutputKind::Job).unwrap();
        files.release(&out.path);
        assert!(!out.path.exists());

        let kept = files.clone().keep_job_outputs(true);
        let out = kept.create(OutputKind::Job).unwrap();
        kept.release(&out.path);
        assert!(out.path.exists());
    }

    #[test]
    fn sweep_removes_only_old_files_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("o");
        let files = OutputFiles::new(&dir).retention(Duration::from_secs(3600));
        let old = SystemTime::now() - Duration::from_secs(7200);
        let age = |path: &Path| {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        };
        let old_output = files.create(OutputKind::Output).unwrap().path;
        let old_answer = files.create(OutputKind::Answer).unwrap().path;
        let fresh_output = files.create(OutputKind::Output).unwrap().path;
        let live_job = files.create(OutputKind::Job).unwrap().path;
        let orphan_job = dir.join("job-1-2-3.log");
        let foreign = dir.join("notes-1.log");
        std::fs::write(&orphan_job, "").unwrap();
        std::fs::write(&foreign, "").unwrap();
        for path in [&old_output, &old_answer, &live_job, &orphan_job, &foreign] {
            age(path);
        }
        let kept = files.clone().keep_job_outputs(true);
        assert_eq!(kept.sweep().unwrap(), 2);
        assert!(orphan_job.exists());
        assert_eq!(files.sweep().unwrap(), 1);
        assert!(!old_output.exists() && !old_answer.exists() && !orphan_job.exists());
        assert!(fresh_output.exists() && live_job.exists() && foreign.exists());
    }

    #[test]
    fn names_of_its_own_files() {
        assert_eq!(
            OutputKind::of_name("output-1-2-3.log"),
            Some(OutputKind::Output)
        );
        assert_eq!(
            OutputKind::of_name("answer-1-2-3.txt"),
            Some(OutputKind::Answer)
        );
        assert_eq!(OutputKind::of_name("job-1-2-3.log"), Some(OutputKind::Job));
        for other in [
            "job-.log",
            "job-x.log",
            "output-1.txt",
            "build.log",
            "job-1.log.bak",
        ] {
            assert_eq!(OutputKind::of_name(other), None, "{other}");
        }
    }

    #[test]
    fn default_dir_prefers_the_runtime_dir() {
        let dir = default_dir();
        match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            Some(r) if r.is_absolute() => assert_eq!(dir, r.join("cc-executor")),
            _ => assert_eq!(
                dir,
                std::env::temp_dir().join(format!("cc-executor-{}", current_uid()))
            ),
        }
    }
}
