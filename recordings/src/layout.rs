//! The recording tree on disk:
//!
//! ```text
//! <root>/published/<format>/<recordID>/      served by playback
//! <root>/unpublished/<format>/<recordID>/    kept, not served
//! <root>/.staging/                           archives being unpacked
//! <root>/.trash/                             deletions in progress
//! ```
//!
//! Every change is a `rename` of a whole format directory, which is atomic
//! on one filesystem: after a crash each format directory is in exactly one
//! place, and running the same operation again finishes the job.

use crate::archive::ExtractedRecording;
use crate::metadata::FormatDir;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use switchboard_domain::recording_ids::{FormatName, RecordId, shorten};
use thiserror::Error;

/// Which tree a format directory is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Visibility {
    /// `published/`: served.
    Published,
    /// `unpublished/`: kept but not served.
    Unpublished,
}

impl Visibility {
    /// The tree's directory name.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Unpublished => "unpublished",
        }
    }

    /// The other tree.
    pub fn other(self) -> Self {
        match self {
            Self::Published => Self::Unpublished,
            Self::Unpublished => Self::Published,
        }
    }

    /// `Published` for true.
    pub fn from_published(published: bool) -> Self {
        if published {
            Self::Published
        } else {
            Self::Unpublished
        }
    }
}

/// Why a tree operation failed.
#[derive(Debug, Error)]
pub enum LayoutError {
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
    /// An object store call failed.
    #[error("could not {action} {key}: {source}")]
    Store {
        /// What was being done.
        action: &'static str,
        /// On which key (or store).
        key: String,
        /// The cause.
        source: Box<object_store::Error>,
    },
    /// The recording has no format directory in either tree.
    #[error("recording {0} is not on disk")]
    NotFound(RecordId),
    /// A format directory is in both trees (someone copied by hand).
    #[error(
        "format `{format}` of recording {record_id} is in both published/ and unpublished/; \
         remove one copy by hand"
    )]
    Conflict {
        /// The format.
        format: FormatName,
        /// The recording.
        record_id: RecordId,
    },
    /// A playback request for nothing servable (unknown, unpublished, a
    /// directory, or missing). Answer 404.
    #[error("no published file at `{0}`")]
    NoSuchFile(String),
    /// A playback request path that tries to leave its recording. Answer 404
    /// (and perhaps log).
    #[error("playback path `{path}` refused: {why}")]
    Refused {
        /// The request path (shortened).
        path: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// Where [`Layout::install`] put a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The format.
    pub format: FormatName,
    /// The tree it is in.
    pub visibility: Visibility,
    /// Its directory.
    pub dir: PathBuf,
    /// False when it was already there and nothing changed.
    pub new: bool,
}

/// The recording tree under one root directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LayoutError {
    let path = path.to_path_buf();
    move |source| LayoutError::Io {
        action,
        path,
        source,
    }
}

/// Whether `path` is a directory (not following a final symlink).
fn is_real_dir(path: &Path) -> Result<bool, LayoutError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.is_dir()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// The valid format names among the directories in `tree`.
fn format_dirs(tree: &Path) -> Result<Vec<FormatName>, LayoutError> {
    let entries = match fs::read_dir(tree) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", tree)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", tree))?;
        let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|n| FormatName::parse(n).ok())
        else {
            continue;
        };
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

impl Layout {
    /// A layout rooted at `root`; nothing is created.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// A layout rooted at `root`, creating the root, both trees and the
    /// staging directory if missing.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, LayoutError> {
        let layout = Self::new(root);
        for dir in [
            layout.tree(Visibility::Published),
            layout.tree(Visibility::Unpublished),
            layout.staging_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(layout)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where archives are unpacked before [`install`](Self::install): on the
    /// same filesystem, so installing is a rename.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join(".staging")
    }

    fn trash_dir(&self) -> PathBuf {
        self.root.join(".trash")
    }

    /// `<root>/published` or `<root>/unpublished`.
    pub fn tree(&self, visibility: Visibility) -> PathBuf {
        self.root.join(visibility.dir_name())
    }

    /// `<root>/<tree>/<format>/<recordID>`.
    pub fn format_dir(
        &self,
        visibility: Visibility,
        format: &FormatName,
        id: &RecordId,
    ) -> PathBuf {
        self.tree(visibility)
            .join(format.as_str())
            .join(id.as_str())
    }

    /// The recordings with at least one format in `visibility`'s tree,
    /// sorted (names that are no record id are skipped).
    pub fn record_ids(&self, visibility: Visibility) -> Result<Vec<RecordId>, LayoutError> {
        let mut ids = std::collections::BTreeSet::new();
        let tree = self.tree(visibility);
        for format in format_dirs(&tree)? {
            let dir = tree.join(format.as_str());
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Some(id) = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| RecordId::parse(name).ok())
                {
                    ids.insert(id);
                }
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// Every format of the recording on disk, with its tree, sorted by format.
    /// A format in both trees is listed twice.
    pub fn locate(&self, id: &RecordId) -> Result<Vec<(FormatName, Visibility)>, LayoutError> {
        let mut found = Vec::new();
        for visibility in [Visibility::Published, Visibility::Unpublished] {
            for format in format_dirs(&self.tree(visibility))? {
                if is_real_dir(&self.format_dir(visibility, &format, id))? {
                    found.push((format, visibility));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Moves one extracted format into the tree. A recording already on disk
    /// keeps its tree (a second format lands next to the first); a new one
    /// goes to `visibility`. A format already on disk is left as it is, so
    /// importing the same archive twice changes nothing.
    pub fn install(
        &self,
        format: &FormatDir,
        visibility: Visibility,
    ) -> Result<Installed, LayoutError> {
        let located = self.locate(&format.record_id)?;
        if let Some((_, vis)) = located.iter().find(|(f, _)| *f == format.format) {
            return Ok(Installed {
                format: format.format.clone(),
                visibility: *vis,
                dir: self.format_dir(*vis, &format.format, &format.record_id),
                new: false,
            });
        }
        let visibility = located.first().map(|(_, v)| *v).unwrap_or(visibility);
        let target = self.format_dir(visibility, &format.format, &format.record_id);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        match fs::rename(&format.dir, &target) {
            Ok(()) => Ok(Installed {
                format: format.format.clone(),
                visibility,
                dir: target,
                new: true,
            }),
            // Someone installed it between our look and the rename.
            Err(_) if is_real_dir(&target)? && !is_real_dir(&format.dir)? => Ok(Installed {
                format: format.format.clone(),
                visibility,
                dir: target,
                new: false,
            }),
            Err(e) => Err(io_err("move into place", &format.dir)(e)),
        }
    }

    /// [`install`](Self::install)s every format of an extracted archive, in
    /// the tree its metadata asks for (`<published>`) unless the recording is
    /// already on disk.
    pub fn install_all(
        &self,
        recording: &ExtractedRecording,
    ) -> Result<Vec<Installed>, LayoutError> {
        recording
            .formats()
            .iter()
            .map(|f| self.install(f, Visibility::from_published(f.metadata.published)))
            .collect()
    }

    /// Moves every format of the recording into `visibility`'s tree; returns
    /// the formats now there. Safe to re-run after a crash.
    pub fn set_visibility(
        &self,
        id: &RecordId,
        visibility: Visibility,
    ) -> Result<Vec<FormatName>, LayoutError> {
        let located = self.locate(id)?;
        if located.is_empty() {
            return Err(LayoutError::NotFound(id.clone()));
        }
        let mut by_format: BTreeMap<FormatName, Vec<Visibility>> = BTreeMap::new();
        for (format, vis) in located {
            by_format.entry(format).or_default().push(vis);
        }
        for (format, places) in &by_format {
            if places.len() > 1 {
                return Err(LayoutError::Conflict {
                    format: format.clone(),
                    record_id: id.clone(),
                });
            }
        }
        for (format, places) in &by_format {
            if places[0] == visibility {
                continue;
            }
            let from = self.format_dir(places[0], format, id);
            let to = self.format_dir(visibility, format, id);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            fs::rename(&from, &to).map_err(io_err("move", &from))?;
        }
        Ok(by_format.into_keys().collect())
    }

    /// Moves the recording to `published/`.
    pub fn publish(&self, id: &RecordId) -> Result<Vec<FormatName>, LayoutError> {
        self.set_visibility(id, Visibility::Published)
    }

    /// Moves the recording to `unpublished/`.
    pub fn unpublish(&self, id: &RecordId) -> Result<Vec<FormatName>, LayoutError> {
        self.set_visibility(id, Visibility::Unpublished)
    }

    /// Removes the recording's files: each format directory is first renamed
    /// into `.trash/` (so playback stops at once), then removed. Returns the
    /// formats removed; a re-run after a crash finishes the removal.
    pub fn delete(&self, id: &RecordId) -> Result<Vec<FormatName>, LayoutError> {
        let located = self.locate(id)?;
        let trash = self.trash_dir();
        let leftovers = self.trash_entries(id)?;
        if located.is_empty() && leftovers.is_empty() {
            return Err(LayoutError::NotFound(id.clone()));
        }
        fs::create_dir_all(&trash).map_err(io_err("create", &trash))?;
        let mut doomed = leftovers;
        let mut formats = Vec::new();
        for (format, vis) in located {
            let from = self.format_dir(vis, &format, id);
            let to = trash.join(format!(
                "{id}.{format}.{}",
                hex::encode(rand::random::<[u8; 4]>())
            ));
            fs::rename(&from, &to).map_err(io_err("move to trash", &from))?;
            doomed.push(to);
            formats.push(format);
        }
        for dir in doomed {
            fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        }
        formats.dedup();
        Ok(formats)
    }

    fn trash_entries(&self, id: &RecordId) -> Result<Vec<PathBuf>, LayoutError> {
        let trash = self.trash_dir();
        let entries = match fs::read_dir(&trash) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &trash)(e)),
        };
        let prefix = format!("{id}.");
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &trash))?;
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                found.push(entry.path());
            }
        }
        Ok(found)
    }

    /// Maps a playback request path `<format>/<recordID>/<rest>` (leading `/`
    /// allowed; the HTTP route strips its own prefix and percent-decoding is
    /// done) to a regular file of a published recording. Refuses `.`, `..`
    /// and empty segments, and anything whose real path (after symlinks)
    /// leaves the recording's directory.
    pub fn resolve_playback(&self, request_path: &str) -> Result<PathBuf, LayoutError> {
        let shown = shorten(request_path);
        let (format, id, rest) = playback_parts(request_path)?;
        let base = self.format_dir(Visibility::Published, &format, &id);
        let mut path = base.clone();
        path.extend(rest);
        let missing = |_| LayoutError::NoSuchFile(shown.clone());
        let base = base.canonicalize().map_err(missing)?;
        let real = path.canonicalize().map_err(missing)?;
        if !real.starts_with(&base) {
            return Err(LayoutError::Refused {
                path: shown,
                why: "a symbolic link leads out of the recording",
            });
        }
        match fs::metadata(&real) {
            Ok(m) if m.is_file() => Ok(real),
            _ => Err(LayoutError::NoSuchFile(shown)),
        }
    }
}

/// Splits a playback request path `<format>/<recordID>/<rest>` (leading
/// `/` allowed; percent-decoding done) into its format, record id and the
/// segments of the file within the recording, for the tree on disk and
/// for an object store alike. Refuses `.`, `..`, empty and unusual
/// segments; a path naming no file is [`LayoutError::NoSuchFile`].
pub fn playback_parts(
    request_path: &str,
) -> Result<(FormatName, RecordId, Vec<&str>), LayoutError> {
    let refused = |why| LayoutError::Refused {
        path: shorten(request_path),
        why,
    };
    let mut parts = request_path
        .strip_prefix('/')
        .unwrap_or(request_path)
        .split('/');
    let format = parts
        .next()
        .and_then(|p| FormatName::parse(p).ok())
        .ok_or_else(|| refused("no valid format name"))?;
    let id = parts
        .next()
        .and_then(|p| RecordId::parse(p).ok())
        .ok_or_else(|| refused("no valid record id"))?;
    let rest: Vec<&str> = parts.collect();
    if rest
        .iter()
        .any(|part| part.is_empty() || *part == "." || *part == ".." || part.contains(['\0', '\\']))
    {
        return Err(refused("empty, `.`, `..` or unusual segment"));
    }
    if rest.is_empty() {
        return Err(LayoutError::NoSuchFile(shorten(request_path)));
    }
    Ok((format, id, rest))
}

/// A recording found by [`import_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRecording {
    /// The recording.
    pub record_id: RecordId,
    /// Its formats, sorted by name.
    pub formats: Vec<FormatDir>,
}

/// Something [`import_dir`] skipped, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// The directory skipped.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// What [`import_dir`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportScan {
    /// Recordings with at least one readable format, sorted by record id.
    pub recordings: Vec<FoundRecording>,
    /// Directories skipped.
    pub problems: Vec<ImportProblem>,
}

/// Walks an existing published tree laid out as `<path>/<format>/<recordID>/`
/// (a BBB server's `/var/bigbluebutton/published`, a Scalelite install's
/// published directory) and reads every format's metadata.xml. Symbolic
/// links and hidden entries are skipped; unreadable format directories are
/// reported in [`ImportScan::problems`], not fatal.
pub fn import_dir(path: &Path) -> Result<ImportScan, LayoutError> {
    let mut found: BTreeMap<RecordId, Vec<FormatDir>> = BTreeMap::new();
    let mut problems = Vec::new();
    let top = fs::read_dir(path).map_err(io_err("list", path))?;
    let mut format_paths = Vec::new();
    for entry in top {
        let entry = entry.map_err(io_err("list", path))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        match FormatName::parse(&name) {
            Ok(format) => format_paths.push((format, entry.path())),
            Err(e) => problems.push(ImportProblem {
                path: entry.path(),
                reason: e.to_string(),
            }),
        }
    }
    for (format, dir) in format_paths {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(ImportProblem {
                    path: dir,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let problem = |reason: String| ImportProblem {
                path: path.clone(),
                reason,
            };
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                problems.push(problem(
                    "not a directory (symbolic links are not followed)".into(),
                ));
                continue;
            }
            let id = match RecordId::parse(&name) {
                Ok(id) => id,
                Err(e) => {
                    problems.push(problem(e.to_string()));
                    continue;
                }
            };
            match FormatDir::load(&path, format.clone(), id.clone()) {
                Ok(loaded) => found.entry(id).or_default().push(loaded),
                Err(e) => problems.push(problem(e.to_string())),
            }
        }
    }
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ImportScan {
        recordings: found
            .into_iter()
            .map(|(record_id, mut formats)| {
                formats.sort_by(|a, b| a.format.cmp(&b.format));
                FoundRecording { record_id, formats }
            })
            .collect(),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::tests::{ID, sample};
    use std::os::unix::fs::symlink;

    const OTHER: &str = "1111111111111111111111111111111111111111-1741369843904";

    fn id(text: &str) -> RecordId {
        RecordId::parse(text).unwrap()
    }

    fn fmt(text: &str) -> FormatName {
        FormatName::parse(text).unwrap()
    }

    /// A format directory as extraction leaves it in staging.
    fn staged(layout: &Layout, record: &str, format: &str, published: bool) -> FormatDir {
        let dir = layout
            .staging_dir()
            .join(hex::encode(rand::random::<[u8; 4]>()))
            .join(format)
            .join(record);
        fs::create_dir_all(dir.join("video")).unwrap();
        let xml = sample(record, format).replace(
            "<published>true</published>",
            &format!("<published>{published}</published>"),
        );
        fs::write(dir.join("metadata.xml"), xml).unwrap();
        fs::write(dir.join("video/webcams.webm"), format!("{format} data")).unwrap();
        FormatDir::load(&dir, fmt(format), id(record)).unwrap()
    }

    fn setup() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path().join("rec")).unwrap();
        (dir, layout)
    }

    #[test]
    fn install_is_idempotent_and_merges_formats() {
        let (_dir, layout) = setup();
        let first = layout
            .install(
                &staged(&layout, ID, "presentation", false),
                Visibility::Unpublished,
            )
            .unwrap();
        assert!(first.new);
        assert_eq!(first.visibility, Visibility::Unpublished);
        assert_eq!(
            first.dir,
            layout.format_dir(Visibility::Unpublished, &fmt("presentation"), &id(ID))
        );
        assert_eq!(
            fs::read(first.dir.join("video/webcams.webm")).unwrap(),
            b"presentation data"
        );

        // The same again: nothing changes, the staged copy is not moved.
        let again = staged(&layout, ID, "presentation", true);
        let second = layout.install(&again, Visibility::Published).unwrap();
        assert!(!second.new);
        assert_eq!(second.dir, first.dir);
        assert!(again.dir.exists());

        // Another format follows the recording's tree, not its own metadata.
        let video = layout
            .install(&staged(&layout, ID, "video", true), Visibility::Published)
            .unwrap();
        assert!(video.new);
        assert_eq!(video.visibility, Visibility::Unpublished);
        assert_eq!(
            layout.locate(&id(ID)).unwrap(),
            vec![
                (fmt("presentation"), Visibility::Unpublished),
                (fmt("video"), Visibility::Unpublished)
            ]
        );
    }

    #[test]
    fn publish_unpublish_and_finish_half_done_moves() {
        let (_dir, layout) = setup();
        let rec = id(ID);
        for format in ["presentation", "video"] {
            layout
                .install(&staged(&layout, ID, format, true), Visibility::Published)
                .unwrap();
        }
        assert_eq!(
            layout.unpublish(&rec).unwrap(),
            vec![fmt("presentation"), fmt("video")]
        );
        assert!(
            layout
                .locate(&rec)
                .unwrap()
                .iter()
                .all(|(_, v)| *v == Visibility::Unpublished)
        );

        // A crash after moving one of two formats: the re-run completes it.
        fs::create_dir_all(layout.tree(Visibility::Published).join("presentation")).unwrap();
        fs::rename(
            layout.format_dir(Visibility::Unpublished, &fmt("presentation"), &rec),
            layout.format_dir(Visibility::Published, &fmt("presentation"), &rec),
        )
        .unwrap();
        layout.publish(&rec).unwrap();
        assert!(
            layout
                .locate(&rec)
                .unwrap()
                .iter()
                .all(|(_, v)| *v == Visibility::Published)
        );
        layout.publish(&rec).unwrap();
        assert_eq!(layout.locate(&rec).unwrap().len(), 2);

        assert!(matches!(
            layout.publish(&id(OTHER)),
            Err(LayoutError::NotFound(_))
        ));
    }

    #[test]
    fn a_format_in_both_trees_is_a_conflict() {
        let (_dir, layout) = setup();
        let rec = id(ID);
        layout
            .install(&staged(&layout, ID, "video", true), Visibility::Published)
            .unwrap();
        fs::create_dir_all(layout.format_dir(Visibility::Unpublished, &fmt("video"), &rec))
            .unwrap();
        let err = layout.unpublish(&rec).unwrap_err();
        assert!(matches!(err, LayoutError::Conflict { .. }), "{err}");
    }

    #[test]
    fn delete_removes_and_can_be_rerun() {
        let (_dir, layout) = setup();
        let rec = id(ID);
        layout
            .install(
                &staged(&layout, ID, "presentation", true),
                Visibility::Published,
            )
            .unwrap();
        layout
            .install(
                &staged(&layout, OTHER, "presentation", true),
                Visibility::Published,
            )
            .unwrap();
        assert_eq!(layout.delete(&rec).unwrap(), vec![fmt("presentation")]);
        assert!(layout.locate(&rec).unwrap().is_empty());
        assert!(matches!(layout.delete(&rec), Err(LayoutError::NotFound(_))));
        assert_eq!(layout.locate(&id(OTHER)).unwrap().len(), 1);

        // A crash after the move to trash: a re-run removes the leftover.
        fs::create_dir_all(
            layout
                .root()
                .join(".trash")
                .join(format!("{OTHER}.video.0000")),
        )
        .unwrap();
        layout.delete(&id(OTHER)).unwrap();
        assert_eq!(
            fs::read_dir(layout.root().join(".trash")).unwrap().count(),
            0
        );
    }

    #[test]
    fn resolves_published_files_only() {
        let (dir, layout) = setup();
        layout
            .install(
                &staged(&layout, ID, "presentation", true),
                Visibility::Published,
            )
            .unwrap();
        layout
            .install(
                &staged(&layout, OTHER, "presentation", false),
                Visibility::Unpublished,
            )
            .unwrap();
        let ok = layout
            .resolve_playback(&format!("/presentation/{ID}/video/webcams.webm"))
            .unwrap();
        assert_eq!(fs::read(ok).unwrap(), b"presentation data");
        assert!(
            layout
                .resolve_playback(&format!("presentation/{ID}/metadata.xml"))
                .is_ok()
        );

        let missing = [
            format!("presentation/{OTHER}/metadata.xml"),
            format!("presentation/{ID}/video"),
            format!("presentation/{ID}"),
            format!("presentation/{ID}/nope"),
            format!("video/{ID}/metadata.xml"),
        ];
        for path in missing {
            let err = layout.resolve_playback(&path).unwrap_err();
            assert!(matches!(err, LayoutError::NoSuchFile(_)), "{path}: {err}");
        }

        // Symbolic links: inside the recording fine, out of it refused.
        let rec_dir = layout.format_dir(Visibility::Published, &fmt("presentation"), &id(ID));
        let secret = dir.path().join("secret.txt");
        fs::write(&secret, "secret").unwrap();
        symlink(&secret, rec_dir.join("escape")).unwrap();
        symlink("video/webcams.webm", rec_dir.join("alias")).unwrap();
        symlink(
            layout.format_dir(Visibility::Unpublished, &fmt("presentation"), &id(OTHER)),
            rec_dir.join("sibling"),
        )
        .unwrap();
        assert!(
            layout
                .resolve_playback(&format!("presentation/{ID}/alias"))
                .is_ok()
        );
        let refused = [
            format!("presentation/{ID}/escape"),
            format!("presentation/{ID}/sibling/metadata.xml"),
            format!("presentation/{ID}/../{OTHER}/metadata.xml"),
            format!("presentation/{ID}/video/../metadata.xml"),
            format!("presentation/{ID}//metadata.xml"),
            format!("presentation/{ID}/./metadata.xml"),
            format!("../published/presentation/{ID}/metadata.xml"),
            format!("presentation/{}/metadata.xml", &ID[..50]),
            "/etc/passwd".to_owned(),
        ];
        for path in refused {
            let err = layout.resolve_playback(&path).unwrap_err();
            assert!(matches!(err, LayoutError::Refused { .. }), "{path}: {err}");
        }
    }

    #[test]
    fn import_dir_finds_recordings_and_reports_problems() {
        let (dir, layout) = setup();
        // Build a BBB-style published tree by installing, then scan it.
        for (record, format) in [(ID, "presentation"), (ID, "video"), (OTHER, "presentation")] {
            layout
                .install(
                    &staged(&layout, record, format, true),
                    Visibility::Published,
                )
                .unwrap();
        }
        let tree = layout.tree(Visibility::Published);
        fs::create_dir_all(tree.join("presentation/not-a-record")).unwrap();
        fs::create_dir_all(tree.join("bad name")).unwrap();
        fs::create_dir_all(tree.join(".hidden")).unwrap();
        let broken = tree.join("podcast").join(OTHER);
        fs::create_dir_all(&broken).unwrap();
        fs::write(broken.join("metadata.xml"), "<recording>").unwrap();
        symlink(dir.path(), tree.join("video").join(OTHER)).unwrap();

        let scan = import_dir(&tree).unwrap();
        let found: Vec<(String, Vec<String>)> = scan
            .recordings
            .iter()
            .map(|r| {
                (
                    r.record_id.to_string(),
                    r.formats.iter().map(|f| f.format.to_string()).collect(),
                )
            })
            .collect();
        let mut expected = vec![
            (
                ID.to_owned(),
                vec!["presentation".to_owned(), "video".to_owned()],
            ),
            (OTHER.to_owned(), vec!["presentation".to_owned()]),
        ];
        expected.sort();
        assert_eq!(found, expected);
        assert_eq!(scan.problems.len(), 4, "{:#?}", scan.problems);
        assert!(import_dir(&dir.path().join("missing")).is_err());
    }
}
