//! The spool directory archives arrive in (by rsync from the BBB servers'
//! post-publish script, or written by the upload endpoint).
//!
//! [`Spool::scan`] lists archives that are complete: named `*.tar`,
//! `*.tar.gz` or `*.tgz`, not hidden (rsync writes to `.name.XXXXXX` and
//! renames when done), regular files, and unchanged for the settle time.
//! Processed archives leave the spool through [`Spool::done`] (to `done/`,
//! or deleted) or [`Spool::fail`] (to `failed/` with a `.reason.txt`;
//! nothing is deleted). [`watch`] turns filesystem events into wake-up
//! signals; combine it with a periodic rescan, since events can be missed.

use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use thiserror::Error;
use tokio::sync::mpsc;

/// Where and how to read the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The spool directory.
    pub dir: PathBuf,
    /// How long an archive's size and modification time must stay put
    /// before it counts as complete. Default 10 s.
    pub settle: Duration,
    /// Move processed archives to `done/` (true, the default) or delete them.
    pub keep_done: bool,
}

impl SpoolConfig {
    /// Defaults for the spool at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            settle: Duration::from_secs(10),
            keep_done: true,
        }
    }
}

/// A spool operation failed.
#[derive(Debug, Error)]
pub enum SpoolError {
    /// A filesystem call failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The filesystem watcher could not be set up (inotify limits?).
    #[error("could not watch the spool directory {path}: {source}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: notify::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |source| SpoolError::Io {
        action,
        path,
        source,
    }
}

/// An archive ready for import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyArchive {
    /// Its path in the spool.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time.
    pub modified: SystemTime,
}

/// Whether a spool file name looks like a finished archive: `*.tar`,
/// `*.tar.gz` or `*.tgz`, not hidden. Temporary names (`*.tmp`, `*.part`,
/// rsync's `.name.XXXXXX`) never match.
pub fn is_archive_name(name: &str) -> bool {
    !name.starts_with('.')
        && [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
}

/// A spool directory. Keeps what the last scan saw, to notice files still
/// being written.
#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    seen: HashMap<PathBuf, (u64, SystemTime)>,
}

impl Spool {
    /// A spool read with `config`.
    pub fn new(config: SpoolConfig) -> Self {
        Self {
            config,
            seen: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SpoolConfig {
        &self.config
    }

    /// `<spool>/failed`.
    pub fn failed_dir(&self) -> PathBuf {
        self.config.dir.join("failed")
    }

    /// `<spool>/done`.
    pub fn done_dir(&self) -> PathBuf {
        self.config.dir.join("done")
    }

    /// The archives ready at `now`, oldest first. An archive is ready when
    /// its modification time is at least the settle time before `now` and
    /// its size and modification time are what the previous scan saw when
    /// it last held the file back (or no scan held it back). Archives
    /// returned stay where they are until [`done`](Self::done) or
    /// [`fail`](Self::fail) moves them, so a later scan returns them again.
    pub fn scan(&mut self, now: SystemTime) -> Result<Vec<ReadyArchive>, SpoolError> {
        let dir = &self.config.dir;
        let entries = fs::read_dir(dir).map_err(io_err("list spool", dir))?;
        let mut ready = Vec::new();
        let mut seen = HashMap::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list spool", dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_archive_name(&name) {
                continue;
            }
            let path = entry.path();
            // Not followed: a symbolic link could point anywhere.
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => meta,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("inspect", &path)(e)),
            };
            let size = meta.len();
            let modified = meta.modified().map_err(io_err("inspect", &path))?;
            let settled = now
                .duration_since(modified)
                .is_ok_and(|age| age >= self.config.settle);
            let unchanged = self
                .seen
                .get(&path)
                .is_none_or(|previous| *previous == (size, modified));
            if settled && unchanged {
                ready.push(ReadyArchive {
                    path,
                    name,
                    size,
                    modified,
                });
            } else {
                seen.insert(path, (size, modified));
            }
        }
        self.seen = seen;
        ready.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
        Ok(ready)
    }

    /// Moves a bad archive to `<spool>/failed/` and writes `reason` beside it
    /// as `<name>.reason.txt`. Never overwrites: a name already taken gets a
    /// `.1`, `.2`, ... suffix. Returns the archive's new path.
    pub fn fail(&self, archive: &Path, reason: &str) -> Result<PathBuf, SpoolError> {
        let target = move_aside(archive, &self.failed_dir())?;
        let mut note = target.clone().into_os_string();
        note.push(".reason.txt");
        let note = PathBuf::from(note);
        let text = format!("{}\n", reason.trim_end());
        fs::write(&note, text).map_err(io_err("write", &note))?;
        Ok(target)
    }

    /// Takes an imported archive out of the spool: to `<spool>/done/` when
    /// `keep_done` (returns the new path), else deletes it (returns None).
    pub fn done(&self, archive: &Path) -> Result<Option<PathBuf>, SpoolError> {
        if self.config.keep_done {
            move_aside(archive, &self.done_dir()).map(Some)
        } else {
            fs::remove_file(archive).map_err(io_err("remove", archive))?;
            Ok(None)
        }
    }
}

/// How long what the spool keeps aside is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Imported archives in `done/`.
    pub done: Duration,
    /// Refused archives (and their reasons) in `failed/`.
    pub failed: Duration,
    /// Leftovers of interrupted work (`.uploads/` in the spool, the
    /// recording tree's `.staging/`): nothing in progress is this old.
    pub leftovers: Duration,
}

impl Spool {
    /// Removes what was kept aside longer than `retention` allows at `now`
    /// (see [`Retention`]); `staging` is the recording tree's staging
    /// directory. Returns how many entries were removed.
    pub fn prune(&self, staging: &Path, retention: Retention, now: SystemTime) -> usize {
        let dir = &self.config.dir;
        [
            (self.done_dir(), retention.done),
            (self.failed_dir(), retention.failed),
            (dir.join(".uploads"), retention.leftovers),
            (staging.to_path_buf(), retention.leftovers),
        ]
        .iter()
        .map(|(dir, keep)| prune_older(dir, *keep, now))
        .sum()
    }
}

/// Removes the entries of `dir` (files or whole directories) last modified
/// more than `keep` before `now`.
fn prune_older(dir: &Path, keep: Duration, now: SystemTime) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > keep);
        if !old {
            continue;
        }
        let path = entry.path();
        let gone = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Moves `file` into `dir` without overwriting anything.
fn move_aside(file: &Path, dir: &Path) -> Result<PathBuf, SpoolError> {
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let name = file
        .file_name()
        .ok_or_else(|| io_err("move", file)(io::ErrorKind::InvalidInput.into()))?;
    for n in 0u32.. {
        let mut candidate = name.to_os_string();
        if n > 0 {
            candidate.push(format!(".{n}"));
        }
        let target = dir.join(candidate);
        // A hard link fails if the target exists, unlike rename.
        match fs::hard_link(file, &target) {
            Ok(()) => {
                fs::remove_file(file).map_err(io_err("remove", file))?;
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if !target.exists() => {
                // No hard links on this filesystem: rename after the check.
                fs::rename(file, &target).map_err(io_err("move", file))?;
                return Ok(target);
            }
            Err(e) => return Err(io_err("move", file)(e)),
        }
    }
    unreachable!("u32 names exhausted")
}

/// Keeps the spool watch alive; dropping it stops the signals.
#[derive(Debug)]
pub struct SpoolWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `dir` (not recursively) and sends `()` when something in it may
/// have changed. Signals coalesce: at most one waits in the channel, so a
/// burst of events means one rescan. Watch errors also send a signal.
pub fn watch(dir: &Path) -> Result<(SpoolWatcher, mpsc::Receiver<()>), SpoolError> {
    let (tx, rx) = mpsc::channel(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(event) => !matches!(event.kind, EventKind::Access(_)),
            Err(_) => true,
        };
        if relevant {
            // Full means a signal is already pending; closed means nobody listens.
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| SpoolError::Watch {
        path: dir.to_path_buf(),
        source,
    })?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|source| SpoolError::Watch {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok((SpoolWatcher { _watcher: watcher }, rx))
}

#[cfg(test)]
mod tests {
    #[test]
    fn prune_removes_only_what_is_older_than_kept() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::new(SpoolConfig {
            dir: root.path().join("spool"),
            settle: Duration::ZERO,
            keep_done: true,
        });
        let staging = root.path().join("tree/.staging");
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let place = |dir: PathBuf, name: &str, age: Duration| {
            fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            fs::write(&path, b"x").unwrap();
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(now - age)
                .unwrap();
        };
        place(spool.done_dir(), "old.tar", 8 * day);
        place(spool.done_dir(), "new.tar", day);
        place(spool.failed_dir(), "old.tar", 31 * day);
        place(spool.failed_dir(), "new.tar", 29 * day);
        place(root.path().join("spool/.uploads"), "x.tar", 2 * day);
        place(staging.clone(), "half", 2 * day);
        let removed = spool.prune(
            &staging,
            Retention {
                done: 7 * day,
                failed: 30 * day,
                leftovers: day,
            },
            now,
        );
        assert_eq!(removed, 4);
        assert!(spool.done_dir().join("new.tar").exists());
        assert!(!spool.done_dir().join("old.tar").exists());
        assert!(spool.failed_dir().join("new.tar").exists());
        assert!(!spool.failed_dir().join("old.tar").exists());
    }

    use super::*;
    use std::os::unix::fs::symlink;

    const ID: &str = "834c2bfbc2e5c8eb1ad9ac3d4cda2b7bf0e5c1a2-1741369843904";

    fn names(ready: &[ReadyArchive]) -> Vec<&str> {
        ready.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn archive_names() {
        for good in [format!("{ID}.tar"), "x.tar.gz".into(), "x.tgz".into()] {
            assert!(is_archive_name(&good), "{good}");
        }
        for bad in [
            ".tar",
            ".x.tar",
            &format!(".{ID}.tar.Ab12Cd"),
            "x.tar.tmp",
            "x.tar.part",
            "x.tmp",
            "x.zip",
            "x.tar.gz.part",
            "x.reason.txt",
        ] {
            assert!(!is_archive_name(bad), "{bad}");
        }
    }

    #[test]
    fn scan_waits_for_settled_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(SpoolConfig::new(dir.path()));
        for name in [
            "b.tar",
            "a.tgz",
            ".a.tar.XyZ123",
            "c.tar.part",
            "d.tmp",
            "notes.txt",
        ] {
            fs::write(dir.path().join(name), "data").unwrap();
        }
        fs::create_dir(dir.path().join("dir.tar")).unwrap();
        symlink("/etc/passwd", dir.path().join("link.tar")).unwrap();

        let now = SystemTime::now();
        assert!(
            spool.scan(now).unwrap().is_empty(),
            "fresh files are not ready"
        );
        let later = now + Duration::from_secs(60);
        let mut ready = names(&spool.scan(later).unwrap())
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        ready.sort();
        assert_eq!(ready, ["a.tgz", "b.tar"]);
    }

    #[test]
    fn scan_skips_files_that_changed_since_the_last_scan() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(SpoolConfig::new(dir.path()));
        let path = dir.path().join("x.tar");
        fs::write(&path, "part").unwrap();
        assert!(
            spool.scan(SystemTime::now()).unwrap().is_empty(),
            "held back"
        );
        fs::write(&path, "part and more").unwrap();
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert!(
            spool.scan(later).unwrap().is_empty(),
            "grew since held back"
        );
        assert_eq!(names(&spool.scan(later).unwrap()), ["x.tar"]);
        // Until moved away, a ready archive stays ready.
        assert_eq!(names(&spool.scan(later).unwrap()), ["x.tar"]);
    }

    #[test]
    fn fail_moves_aside_with_reason_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(SpoolConfig::new(dir.path()));
        let path = dir.path().join("x.tar");
        fs::write(&path, "one").unwrap();
        let first = spool
            .fail(&path, "entry `/etc/passwd` has an absolute path")
            .unwrap();
        assert_eq!(first, dir.path().join("failed/x.tar"));
        assert!(!path.exists());
        assert_eq!(
            fs::read_to_string(dir.path().join("failed/x.tar.reason.txt")).unwrap(),
            "entry `/etc/passwd` has an absolute path\n"
        );
        fs::write(&path, "two").unwrap();
        let second = spool.fail(&path, "again").unwrap();
        assert_eq!(second, dir.path().join("failed/x.tar.1"));
        assert_eq!(fs::read_to_string(first).unwrap(), "one");
        assert_eq!(fs::read_to_string(&second).unwrap(), "two");
        assert!(dir.path().join("failed/x.tar.1.reason.txt").exists());
    }

    #[test]
    fn done_moves_or_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        fs::write(&path, "x").unwrap();
        let keep = Spool::new(SpoolConfig::new(dir.path()));
        assert_eq!(
            keep.done(&path).unwrap(),
            Some(dir.path().join("done/x.tar"))
        );
        fs::write(&path, "x").unwrap();
        let drop = Spool::new(SpoolConfig {
            keep_done: false,
            ..SpoolConfig::new(dir.path())
        });
        assert_eq!(drop.done(&path).unwrap(), None);
        assert!(!path.exists());
        assert!(dir.path().join("done/x.tar").exists());
    }

    #[tokio::test]
    async fn watcher_signals_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let (_watcher, mut rx) = watch(dir.path()).unwrap();
        fs::write(dir.path().join("x.tar"), "x").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(got.unwrap(), Some(()));
        assert!(watch(&dir.path().join("missing")).is_err());
    }
}
