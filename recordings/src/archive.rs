//! Safe extraction of an untrusted recording archive.
//!
//! Scalelite's post-publish script sends `<recordID>.tar` (uncompressed)
//! holding `<format>/<recordID>/...`, with a `metadata.xml` in every
//! `<format>/<recordID>/`. Gzip-compressed archives (`.tar.gz`, `.tgz`) are
//! accepted too; compression is recognised by its magic bytes, not the name.
//!
//! Extraction writes only regular files and directories, only below a fresh
//! staging directory, and only at paths of the form
//! `<format>/<recordID>/...`. It refuses absolute paths, `..`, every kind of
//! link, device and FIFO entries, a second record id, and archives beyond the
//! [`ArchiveLimits`]. Entry headers are interpreted here (tar's raw mode), so
//! long-name and pax records are size-capped before they are read.

use crate::metadata::{FormatDir, METADATA_FILE, MetadataError};
use flate2::read::MultiGzDecoder;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use switchboard_domain::recording_ids::{FormatName, IdError, RecordId, shorten};
use thiserror::Error;

/// Largest GNU long-name or pax header record read into memory.
pub const MAX_HEADER_RECORD_BYTES: u64 = 64 * 1024;

/// Limits on what one archive may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Sum of all entry sizes, in bytes. Default 32 GiB.
    pub max_total_bytes: u64,
    /// Number of tar entries (headers), including directories. Default 100,000.
    pub max_entries: u64,
    /// Size of one file, in bytes. Default 16 GiB.
    pub max_file_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: 32 << 30,
            max_entries: 100_000,
            max_file_bytes: 16 << 30,
        }
    }
}

/// Why an archive was not extracted. Every variant but [`ArchiveError::Io`]
/// means the archive itself is bad (see [`ArchiveError::is_bad_archive`]).
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// Reading the archive file or writing the staging directory failed;
    /// the archive may be fine, try again later.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Not a tar (or gzip-compressed tar) stream, or truncated.
    #[error("not a readable tar or tar.gz archive: {0}")]
    Corrupt(String),
    /// An entry with an absolute path.
    #[error("entry `{entry}` has an absolute path")]
    AbsolutePath {
        /// The entry's path.
        entry: String,
    },
    /// An entry with a `..` component.
    #[error("entry `{entry}` contains `..`")]
    ParentDir {
        /// The entry's path.
        entry: String,
    },
    /// An entry whose path is empty or not UTF-8.
    #[error("entry `{entry}` has an unusable path: {why}")]
    BadPath {
        /// The entry's path (lossy).
        entry: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A symbolic or hard link.
    #[error("entry `{entry}` is a link; recording archives may hold only files and directories")]
    Link {
        /// The entry's path.
        entry: String,
    },
    /// A device or FIFO.
    #[error("entry `{entry}` is a {kind}; recording archives may hold only files and directories")]
    SpecialFile {
        /// The entry's path.
        entry: String,
        /// `character device`, `block device` or `FIFO`.
        kind: &'static str,
    },
    /// An entry type or header feature this reader does not take.
    #[error("entry `{entry}` is not supported: {what}")]
    Unsupported {
        /// The entry's path.
        entry: String,
        /// What is not supported.
        what: String,
    },
    /// An entry outside `<format>/<recordID>/`.
    #[error("entry `{entry}` is outside `<format>/<recordID>/`: {why}")]
    OutsideLayout {
        /// The entry's path.
        entry: String,
        /// What is wrong.
        why: String,
    },
    /// Entries (or the archive name) name different recordings.
    #[error("archive mixes recordings: expected `{expected}`, found `{found}`")]
    RecordIdMismatch {
        /// The record id first seen (or taken from the archive's name).
        expected: String,
        /// The other one.
        found: String,
    },
    /// More entries than allowed.
    #[error("archive has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// More bytes than allowed in total.
    #[error("archive unpacks to more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// One file larger than allowed.
    #[error("entry `{entry}` is {size} bytes, more than the {limit} allowed per file")]
    FileTooLarge {
        /// The entry's path.
        entry: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The same path twice.
    #[error("entry `{entry}` appears twice")]
    Duplicate {
        /// The entry's path.
        entry: String,
    },
    /// No `<format>/<recordID>/` directory at all.
    #[error("archive holds no recording (no `<format>/<recordID>/` entries)")]
    Empty,
    /// A format directory without metadata.xml.
    #[error("format `{format}` has no {METADATA_FILE}")]
    MissingMetadata {
        /// The format.
        format: FormatName,
    },
    /// A metadata.xml that does not parse or does not match its directory.
    #[error("format `{format}`: {source}")]
    Metadata {
        /// The format.
        format: FormatName,
        /// Why.
        source: MetadataError,
    },
}

impl ArchiveError {
    /// Whether the archive itself is at fault (move it aside) rather than
    /// the local disk (keep it and retry).
    pub fn is_bad_archive(&self) -> bool {
        match self {
            Self::Io { .. } => false,
            Self::Metadata { source, .. } => !matches!(source, MetadataError::Io { .. }),
            _ => true,
        }
    }
}

/// A recording unpacked into a staging directory, waiting to be installed
/// (see `Layout::install` in the layout module). Dropping it removes whatever is
/// left of the staging directory.
#[derive(Debug)]
pub struct ExtractedRecording {
    record_id: RecordId,
    staging: PathBuf,
    formats: Vec<FormatDir>,
}

impl ExtractedRecording {
    /// The recording.
    pub fn record_id(&self) -> &RecordId {
        &self.record_id
    }

    /// The staging directory (holds `<format>/<recordID>/`).
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The formats found, sorted by name, each with its metadata.
    pub fn formats(&self) -> &[FormatDir] {
        &self.formats
    }

    /// Removes the staging directory now, reporting failure.
    pub fn discard(mut self) -> io::Result<()> {
        let staging = std::mem::take(&mut self.staging);
        remove_if_present(&staging)
    }
}

impl Drop for ExtractedRecording {
    fn drop(&mut self) {
        if !self.staging.as_os_str().is_empty() {
            let _ = remove_if_present(&self.staging);
        }
    }
}

fn remove_if_present(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The record id in an archive's file name (`<recordID>.tar`, `.tar.gz`,
/// `.tgz`), if it has one.
pub fn record_id_from_archive_name(name: &str) -> Option<RecordId> {
    let stem = name
        .strip_suffix(".tar")
        .or_else(|| name.strip_suffix(".tar.gz"))
        .or_else(|| name.strip_suffix(".tgz"))?;
    RecordId::parse(stem).ok()
}

/// Extracts the archive file at `archive` into a fresh directory under
/// `staging_root` (which should be on the filesystem of the recording tree,
/// so installing is a rename). When the file name holds a record id, every
/// entry must belong to it.
pub fn extract_file(
    archive: &Path,
    staging_root: &Path,
    limits: &ArchiveLimits,
) -> Result<ExtractedRecording, ArchiveError> {
    let expected = archive
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(record_id_from_archive_name);
    let file = File::open(archive).map_err(|source| ArchiveError::Io {
        action: "open archive",
        path: archive.to_path_buf(),
        source,
    })?;
    extract_reader(file, expected.as_ref(), staging_root, limits)
}

/// Extracts an archive read from `reader` (an upload, a file) into a fresh
/// directory under `staging_root`. With `expected`, every entry must belong
/// to that recording.
pub fn extract_reader<R: Read>(
    reader: R,
    expected: Option<&RecordId>,
    staging_root: &Path,
    limits: &ArchiveLimits,
) -> Result<ExtractedRecording, ArchiveError> {
    let staging = create_staging(staging_root)?;
    match unpack_and_load(reader, expected, &staging, limits) {
        Ok((record_id, formats)) => Ok(ExtractedRecording {
            record_id,
            staging,
            formats,
        }),
        Err(e) => {
            let _ = remove_if_present(&staging);
            Err(e)
        }
    }
}

fn unpack_and_load<R: Read>(
    reader: R,
    expected: Option<&RecordId>,
    staging: &Path,
    limits: &ArchiveLimits,
) -> Result<(RecordId, Vec<FormatDir>), ArchiveError> {
    let (record_id, names) = unpack(reader, expected, staging, limits)?;
    let mut formats = Vec::new();
    for format in names {
        let dir = staging.join(format.as_str()).join(record_id.as_str());
        if !dir.join(METADATA_FILE).is_file() {
            return Err(ArchiveError::MissingMetadata { format });
        }
        let loaded = FormatDir::load(&dir, format.clone(), record_id.clone())
            .map_err(|source| ArchiveError::Metadata { format, source })?;
        formats.push(loaded);
    }
    Ok((record_id, formats))
}

fn create_staging(staging_root: &Path) -> Result<PathBuf, ArchiveError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io {
            action,
            path,
            source,
        }
    };
    fs::create_dir_all(staging_root).map_err(io("create staging root", staging_root))?;
    loop {
        let dir = staging_root.join(format!(
            ".extract-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("create staging directory", &dir)(e)),
        }
    }
}

/// What an entry may become on disk.
enum Kind {
    File,
    Dir,
}

/// Counters and pending header records while walking the entries.
struct Walk<'a> {
    limits: &'a ArchiveLimits,
    entries: u64,
    total: u64,
    long_name: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_size: Option<u64>,
    record_id: Option<RecordId>,
    formats: BTreeSet<FormatName>,
}

fn corrupt(e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Corrupt(shorten(&e.to_string()))
}

fn read_record<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    what: &str,
) -> Result<Vec<u8>, ArchiveError> {
    let size = entry.size();
    if size > MAX_HEADER_RECORD_BYTES {
        return Err(ArchiveError::Corrupt(format!(
            "{what} record of {size} bytes (at most {MAX_HEADER_RECORD_BYTES} accepted)"
        )));
    }
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(corrupt)?;
    Ok(bytes)
}

/// Writes the entries below `staging`; returns the record id and the formats seen.
fn unpack<R: Read>(
    reader: R,
    expected: Option<&RecordId>,
    staging: &Path,
    limits: &ArchiveLimits,
) -> Result<(RecordId, BTreeSet<FormatName>), ArchiveError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let head = buffered.fill_buf().map_err(corrupt)?;
    let input: Box<dyn Read + '_> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(input);
    let mut walk = Walk {
        limits,
        entries: 0,
        total: 0,
        long_name: None,
        pax_path: None,
        pax_size: None,
        record_id: expected.cloned(),
        formats: BTreeSet::new(),
    };
    for entry in archive.entries().map_err(corrupt)?.raw(true) {
        let mut entry = entry.map_err(corrupt)?;
        walk.entry(&mut entry, staging)?;
    }
    if walk.long_name.is_some() || walk.pax_path.is_some() {
        return Err(ArchiveError::Corrupt(
            "archive ends with a name record but no entry".into(),
        ));
    }
    match walk.record_id {
        Some(id) if !walk.formats.is_empty() => Ok((id, walk.formats)),
        _ => Err(ArchiveError::Empty),
    }
}

impl Walk<'_> {
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        staging: &Path,
    ) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        let size = entry.size();
        self.total = self.total.saturating_add(size);
        if self.total > self.limits.max_total_bytes {
            return Err(ArchiveError::TooLarge {
                limit: self.limits.max_total_bytes,
            });
        }
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname() {
            let mut name = read_record(entry, "long name")?;
            while name.last() == Some(&0) {
                name.pop();
            }
            self.long_name = Some(name);
            return Ok(());
        }
        if kind.is_pax_local_extensions() {
            let record = read_record(entry, "pax")?;
            return self.pax(&record);
        }
        if kind.is_pax_global_extensions() {
            read_record(entry, "pax global")?;
            return Ok(());
        }

        let raw_path = match (self.long_name.take(), self.pax_path.take()) {
            (Some(name), _) | (None, Some(name)) => name,
            (None, None) => entry.path_bytes().into_owned(),
        };
        let shown = shorten(&String::from_utf8_lossy(&raw_path));
        if let Some(pax_size) = self.pax_size.take()
            && pax_size != size
        {
            return Err(ArchiveError::Unsupported {
                entry: shown,
                what: "a pax size record that differs from the header (re-pack in GNU tar format)"
                    .into(),
            });
        }

        let what = if kind.is_symlink() || kind.is_hard_link() || kind.is_gnu_longlink() {
            return Err(ArchiveError::Link { entry: shown });
        } else if kind.is_character_special() {
            return Err(ArchiveError::SpecialFile {
                entry: shown,
                kind: "character device",
            });
        } else if kind.is_block_special() {
            return Err(ArchiveError::SpecialFile {
                entry: shown,
                kind: "block device",
            });
        } else if kind.is_fifo() {
            return Err(ArchiveError::SpecialFile {
                entry: shown,
                kind: "FIFO",
            });
        } else if kind.is_dir() {
            Kind::Dir
        } else if kind.is_file() || kind.is_contiguous() {
            // Old tars mark directories as files with a trailing slash.
            if raw_path.ends_with(b"/") && size == 0 {
                Kind::Dir
            } else {
                Kind::File
            }
        } else {
            return Err(ArchiveError::Unsupported {
                entry: shown,
                what: format!("tar entry type `{}`", kind.as_byte().escape_ascii()),
            });
        };

        let parts = split_path(&raw_path, &shown)?;
        self.check_layout(&parts, &what, &shown)?;
        let target = parts.iter().fold(staging.to_path_buf(), |p, c| p.join(c));
        match what {
            Kind::Dir => fs::create_dir_all(&target).map_err(|source| ArchiveError::Io {
                action: "create directory",
                path: target,
                source,
            }),
            Kind::File => {
                if size > self.limits.max_file_bytes {
                    return Err(ArchiveError::FileTooLarge {
                        entry: shown,
                        size,
                        limit: self.limits.max_file_bytes,
                    });
                }
                write_file(entry, size, &target, &shown)
            }
        }
    }

    fn pax(&mut self, record: &[u8]) -> Result<(), ArchiveError> {
        for ext in tar::PaxExtensions::new(record) {
            let ext = ext.map_err(corrupt)?;
            let key = ext.key().map_err(corrupt)?;
            match key {
                "path" => self.pax_path = Some(ext.value_bytes().to_vec()),
                "size" => {
                    let size = ext
                        .value()
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| ArchiveError::Corrupt("pax size is not a number".into()))?;
                    self.pax_size = Some(size);
                }
                k if k.starts_with("GNU.sparse") => {
                    return Err(ArchiveError::Unsupported {
                        entry: String::from_utf8_lossy(
                            self.pax_path.as_deref().unwrap_or_default(),
                        )
                        .into_owned(),
                        what: "sparse files".into(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check_layout(
        &mut self,
        parts: &[&str],
        kind: &Kind,
        shown: &str,
    ) -> Result<(), ArchiveError> {
        let outside = |why: String| ArchiveError::OutsideLayout {
            entry: shown.to_owned(),
            why,
        };
        let format = FormatName::parse(parts[0]).map_err(|e: IdError| outside(e.to_string()))?;
        if let Some(id) = parts.get(1) {
            let id = RecordId::parse(id).map_err(|e| outside(e.to_string()))?;
            match &self.record_id {
                Some(known) if *known != id => {
                    return Err(ArchiveError::RecordIdMismatch {
                        expected: known.to_string(),
                        found: id.to_string(),
                    });
                }
                Some(_) => {}
                None => self.record_id = Some(id),
            }
            self.formats.insert(format);
        }
        if matches!(kind, Kind::File) && parts.len() < 3 {
            return Err(outside("a file where a directory belongs".into()));
        }
        Ok(())
    }
}

/// Splits an entry path into its normal components, refusing absolute
/// paths and `..`.
fn split_path<'a>(raw: &'a [u8], shown: &str) -> Result<Vec<&'a str>, ArchiveError> {
    let text = std::str::from_utf8(raw).map_err(|_| ArchiveError::BadPath {
        entry: shown.to_owned(),
        why: "not UTF-8",
    })?;
    if text.starts_with('/') {
        return Err(ArchiveError::AbsolutePath {
            entry: shown.to_owned(),
        });
    }
    if text.contains('\0') {
        return Err(ArchiveError::BadPath {
            entry: shown.to_owned(),
            why: "contains NUL",
        });
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(ArchiveError::ParentDir {
                    entry: shown.to_owned(),
                });
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(ArchiveError::BadPath {
            entry: shown.to_owned(),
            why: "empty",
        });
    }
    Ok(parts)
}

fn write_file<R: Read>(
    entry: &mut R,
    size: u64,
    target: &Path,
    shown: &str,
) -> Result<(), ArchiveError> {
    let io = |action| {
        let path = target.to_path_buf();
        move |source| ArchiveError::Io {
            action,
            path,
            source,
        }
    };
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(io("create directory"))?;
    }
    let mut file = match OpenOptions::new().write(true).create_new(true).open(target) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(ArchiveError::Duplicate {
                entry: shown.to_owned(),
            });
        }
        Err(e) => return Err(io("create file")(e)),
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let n = match entry.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        file.write_all(&buffer[..n]).map_err(io("write file"))?;
        written += n as u64;
    }
    if written != size {
        return Err(ArchiveError::Corrupt(format!(
            "entry `{shown}` is truncated ({written} of {size} bytes)"
        )));
    }
    file.flush().map_err(io("write file"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::tests::{ID, sample};
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use tar::{Builder, EntryType, Header};

    const OTHER: &str = "1111111111111111111111111111111111111111-1741369843904";

    fn file(b: &mut Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::file());
        b.append_data(&mut h, path, data).unwrap();
    }

    /// Appends a header with the path written verbatim (bypassing the
    /// builder's own checks), as an attacker would.
    fn raw(b: &mut Builder<Vec<u8>>, path: &str, kind: EntryType, data: &[u8], link: &str) {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn recording(b: &mut Builder<Vec<u8>>, id: &str, format: &str) {
        file(
            b,
            &format!("{format}/{id}/metadata.xml"),
            sample(id, format).as_bytes(),
        );
        // Longer than the 100 bytes of a plain header: needs a GNU long name.
        let deep = format!(
            "{format}/{id}/presentation/{}/svgs/image1.svg",
            "d2d9a672040fbde2a47a10bf6c37b6a4b5ae187f-1741369844000"
        );
        assert!(deep.len() > 100);
        file(b, &deep, b"<svg/>");
    }

    fn tar_of(build: impl FnOnce(&mut Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn good() -> Vec<u8> {
        tar_of(|b| {
            recording(b, ID, "presentation");
            recording(b, ID, "video");
        })
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn extract(bytes: &[u8], root: &Path) -> Result<ExtractedRecording, ArchiveError> {
        extract_reader(
            bytes,
            None,
            &root.join("staging"),
            &ArchiveLimits::default(),
        )
    }

    fn assert_clean(root: &Path) {
        let left: Vec<_> = fs::read_dir(root.join("staging")).unwrap().collect();
        assert!(left.is_empty(), "staging left behind: {left:?}");
    }

    #[test]
    fn extracts_two_formats() {
        let root = tempfile::tempdir().unwrap();
        let rec = extract(&good(), root.path()).unwrap();
        assert_eq!(rec.record_id().as_str(), ID);
        assert!(rec.staging().starts_with(root.path().join("staging")));
        let names: Vec<_> = rec.formats().iter().map(|f| f.format.as_str()).collect();
        assert_eq!(names, ["presentation", "video"]);
        let p = &rec.formats()[0];
        assert_eq!(p.dir, rec.staging().join("presentation").join(ID));
        assert_eq!(p.metadata.meeting_id, "room-42");
        let svg = fs::read_dir(p.dir.join("presentation"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            fs::read(svg.path().join("svgs/image1.svg")).unwrap(),
            b"<svg/>"
        );
        drop(rec);
        assert_clean(root.path());
    }

    #[test]
    fn gzip_is_recognised_by_content_not_name() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join(format!("{ID}.tar"));
        fs::write(&path, gz(&good())).unwrap();
        let rec = extract_file(
            &path,
            &root.path().join("staging"),
            &ArchiveLimits::default(),
        )
        .unwrap();
        assert_eq!(rec.formats().len(), 2);
        rec.discard().unwrap();
        assert_clean(root.path());
    }

    #[test]
    fn pax_paths_are_honoured() {
        let bytes = tar_of(|b| {
            file(
                b,
                &format!("presentation/{ID}/metadata.xml"),
                sample(ID, "presentation").as_bytes(),
            );
            let long = format!("presentation/{ID}/{}/x.txt", "p".repeat(120));
            b.append_pax_extensions([("path", long.as_bytes())])
                .unwrap();
            file(b, "placeholder", b"pax");
        });
        let root = tempfile::tempdir().unwrap();
        let rec = extract(&bytes, root.path()).unwrap();
        let x = rec.formats()[0].dir.join("p".repeat(120)).join("x.txt");
        assert_eq!(fs::read(x).unwrap(), b"pax");
    }

    fn refused(bytes: &[u8]) -> ArchiveError {
        let root = tempfile::tempdir().unwrap();
        let err = extract(bytes, root.path()).unwrap_err();
        assert!(err.is_bad_archive(), "{err}");
        assert_clean(root.path());
        err
    }

    /// A valid recording followed by one hostile entry.
    fn with(kind: EntryType, path: &str, data: &[u8], link: &str) -> Vec<u8> {
        tar_of(|b| {
            recording(b, ID, "presentation");
            raw(b, path, kind, data, link);
        })
    }

    #[test]
    fn refuses_absolute_paths() {
        let err = refused(&with(EntryType::file(), "/tmp/evil", b"x", ""));
        assert!(matches!(err, ArchiveError::AbsolutePath { .. }), "{err}");
    }

    #[test]
    fn refuses_parent_components() {
        for path in ["../evil", &format!("presentation/{ID}/../../../evil")] {
            let err = refused(&with(EntryType::file(), path, b"x", ""));
            assert!(matches!(err, ArchiveError::ParentDir { .. }), "{err}");
        }
    }

    #[test]
    fn refuses_links() {
        let inside = format!("presentation/{ID}/passwd");
        for kind in [EntryType::symlink(), EntryType::hard_link()] {
            let err = refused(&with(kind, &inside, b"", "/etc/passwd"));
            assert!(matches!(err, ArchiveError::Link { .. }), "{err}");
        }
        // Even one pointing inside the recording.
        let err = refused(&with(EntryType::symlink(), &inside, b"", "metadata.xml"));
        assert!(matches!(err, ArchiveError::Link { .. }), "{err}");
    }

    #[test]
    fn refuses_devices_and_fifos() {
        let path = format!("presentation/{ID}/dev");
        for kind in [
            EntryType::character_special(),
            EntryType::block_special(),
            EntryType::fifo(),
        ] {
            let err = refused(&with(kind, &path, b"", ""));
            assert!(matches!(err, ArchiveError::SpecialFile { .. }), "{err}");
        }
        let err = refused(&with(EntryType::new(b'S'), &path, b"", ""));
        assert!(matches!(err, ArchiveError::Unsupported { .. }), "{err}");
    }

    #[test]
    fn refuses_entries_outside_the_layout() {
        for path in [
            "evil.txt",
            &format!("presentation/{ID}"),
            "presentation/not-an-id/x",
            "bad format/x/y",
        ] {
            let err = refused(&with(EntryType::file(), path, b"x", ""));
            assert!(
                matches!(err, ArchiveError::OutsideLayout { .. }),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn refuses_mixed_record_ids() {
        let err = refused(&tar_of(|b| {
            recording(b, ID, "presentation");
            recording(b, OTHER, "video");
        }));
        assert!(
            matches!(err, ArchiveError::RecordIdMismatch { .. }),
            "{err}"
        );

        let root = tempfile::tempdir().unwrap();
        let path = root.path().join(format!("{OTHER}.tar"));
        fs::write(&path, good()).unwrap();
        let err = extract_file(
            &path,
            &root.path().join("staging"),
            &ArchiveLimits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ArchiveError::RecordIdMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn enforces_limits() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join("staging");
        let base = ArchiveLimits::default();
        let cases = [
            (
                ArchiveLimits {
                    max_file_bytes: 100,
                    ..base
                },
                "per file",
            ),
            (
                ArchiveLimits {
                    max_total_bytes: 1000,
                    ..base
                },
                "more than 1000 bytes",
            ),
            (
                ArchiveLimits {
                    max_entries: 3,
                    ..base
                },
                "more than 3 entries",
            ),
        ];
        for (limits, text) in cases {
            let err = extract_reader(&good()[..], None, &staging, &limits).unwrap_err();
            assert!(err.to_string().contains(text), "{err}");
        }
        assert_clean(root.path());
    }

    #[test]
    fn refuses_huge_name_records() {
        let err = refused(&tar_of(|b| {
            raw(
                b,
                "././@LongLink",
                EntryType::GNULongName,
                &vec![b'a'; 100_000],
                "",
            );
        }));
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
    }

    #[test]
    fn refuses_pax_size_disagreement() {
        let err = refused(&tar_of(|b| {
            recording(b, ID, "presentation");
            b.append_pax_extensions([("size", &b"5"[..])]).unwrap();
            file(b, &format!("presentation/{ID}/x"), b"abc");
        }));
        assert!(matches!(err, ArchiveError::Unsupported { .. }), "{err}");
    }

    #[test]
    fn refuses_duplicates_missing_and_wrong_metadata() {
        let dup = format!("presentation/{ID}/metadata.xml");
        let err = refused(&with(EntryType::file(), &dup, b"again", ""));
        assert!(matches!(err, ArchiveError::Duplicate { .. }), "{err}");

        let err = refused(&tar_of(|b| {
            file(b, &format!("video/{ID}/video.webm"), b"v")
        }));
        assert!(matches!(err, ArchiveError::MissingMetadata { .. }), "{err}");

        let err = refused(&tar_of(|b| {
            file(
                b,
                &format!("video/{ID}/metadata.xml"),
                sample(ID, "presentation").as_bytes(),
            );
        }));
        assert!(matches!(err, ArchiveError::Metadata { .. }), "{err}");
        let err = refused(&tar_of(|b| {
            file(
                b,
                &format!("video/{ID}/metadata.xml"),
                sample(OTHER, "video").as_bytes(),
            );
        }));
        assert!(err.to_string().contains("record id"), "{err}");
    }

    #[test]
    fn refuses_garbage_and_truncation() {
        assert!(matches!(refused(&[]), ArchiveError::Empty));
        assert!(matches!(refused(&[0u8; 1024]), ArchiveError::Empty));
        assert!(matches!(refused(&[7u8; 1024]), ArchiveError::Corrupt(_)));
        let good = good();
        let err = refused(&good[..good.len() / 2]);
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
        let zipped = gz(&good);
        let err = refused(&zipped[..zipped.len() / 2]);
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
        // Every truncation point: an error or a complete recording, never a panic.
        for cut in (0..good.len()).step_by(97) {
            let root = tempfile::tempdir().unwrap();
            let _ = extract(&good[..cut], root.path());
        }
    }

    #[test]
    fn names_with_record_ids() {
        for name in [
            format!("{ID}.tar"),
            format!("{ID}.tar.gz"),
            format!("{ID}.tgz"),
        ] {
            assert_eq!(record_id_from_archive_name(&name).unwrap().as_str(), ID);
        }
        assert!(record_id_from_archive_name(ID).is_none());
        assert!(record_id_from_archive_name("upload.tar").is_none());
    }
}
