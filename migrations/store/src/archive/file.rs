//! The archive file: gzip'd JSON lines. A header line (the format, the
//! `--before` asked and the positions), one line per event exactly as the
//! log held it (payload and metadata as their stored JSON text), and a
//! trailer line with the number of events and the SHA-256 of the header
//! and event lines, so a file can be checked without the database. The
//! file holds secrets (server and tenant secrets are in the events): it is
//! readable by its owner only.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use switchboard_migrations::entities::event;

/// The format's version, in the header.
const FORMAT: u32 = 1;

/// The first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// Always 1 (this format).
    pub switchboard_archive: u32,
    /// The `--before` asked: events recorded before it.
    pub before: chrono::DateTime<chrono::Utc>,
    /// Position of the first archived event.
    pub first_position: i64,
    /// Position of the last archived event.
    pub last_position: i64,
}

/// One archived event, as the log held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ArchivedEvent {
    position: i64,
    stream: String,
    version: i64,
    event_type: String,
    schema_version: i32,
    payload: String,
    metadata: String,
    recorded_at: chrono::DateTime<chrono::Utc>,
    actor: Option<String>,
}

/// The last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ArchiveTrailer {
    end: bool,
    events: u64,
    sha256: String,
}

/// What a checked archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Its header.
    pub header: ArchiveHeader,
    /// Events in it.
    pub events: u64,
    /// SHA-256 (hex) of its header and event lines.
    pub sha256: String,
}

/// Writes an archive file.
pub(crate) struct ArchiveWriter {
    out: flate2::write::GzEncoder<BufWriter<std::fs::File>>,
    hash: Sha256,
    events: u64,
    last: i64,
}

fn line<T: Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

impl ArchiveWriter {
    /// Starts `path` (which must not exist) with its header.
    pub(crate) fn create(path: &Path, header: &ArchiveHeader) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        let mut out =
            flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
        let first = line(header)?;
        let mut hash = Sha256::new();
        hash.update(&first);
        out.write_all(&first)?;
        Ok(Self {
            out,
            hash,
            events: 0,
            last: 0,
        })
    }

    /// Adds one event row (in position order).
    pub(crate) fn event(&mut self, row: &event::Model) -> std::io::Result<()> {
        let bytes = line(&ArchivedEvent {
            position: row.position,
            stream: row.stream.clone(),
            version: row.version,
            event_type: row.event_type.clone(),
            schema_version: row.schema_version,
            payload: row.payload.clone(),
            metadata: row.metadata.clone(),
            recorded_at: row.recorded_at,
            actor: row.actor.clone(),
        })?;
        self.hash.update(&bytes);
        self.out.write_all(&bytes)?;
        self.events += 1;
        self.last = row.position;
        Ok(())
    }

    /// Ends the file with its trailer and makes it durable; returns the
    /// number of events and their SHA-256.
    pub(crate) fn finish(self) -> std::io::Result<(u64, String)> {
        let Self {
            mut out,
            hash,
            events,
            ..
        } = self;
        let sha256 = hex::encode(hash.finalize());
        out.write_all(&line(&ArchiveTrailer {
            end: true,
            events,
            sha256: sha256.clone(),
        })?)?;
        let file = out.finish()?.into_inner().map_err(|err| err.into_error())?;
        file.sync_all()?;
        Ok((events, sha256))
    }
}

/// Reads an archive through and checks it: the header, every event line
/// (positions rising within the header's range), and the trailer's count
/// and SHA-256.
pub fn verify_archive(path: &Path) -> Result<ArchiveSummary, String> {
    let file = std::fs::File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut lines = BufReader::new(flate2::read::GzDecoder::new(file)).split(b'\n');
    let mut next = |what: &str| -> Result<Vec<u8>, String> {
        match lines.next() {
            Some(Ok(line)) => Ok(line),
            Some(Err(err)) => Err(format!("cannot read the {what}: {err}")),
            None => Err(format!("the file ends before the {what}")),
        }
    };
    let mut first = next("header")?;
    let header: ArchiveHeader = serde_json::from_slice(&first)
        .map_err(|err| format!("the header is not an archive header: {err}"))?;
    if header.switchboard_archive != FORMAT {
        return Err(format!(
            "archive format {} is not known (this version reads {FORMAT})",
            header.switchboard_archive
        ));
    }
    let mut hash = Sha256::new();
    first.push(b'\n');
    hash.update(&first);
    let mut events = 0_u64;
    let mut last = header.first_position - 1;
    loop {
        let mut line = next("trailer")?;
        if let Ok(trailer) = serde_json::from_slice::<ArchiveTrailer>(&line) {
            let sha256 = hex::encode(hash.finalize());
            if !trailer.end || trailer.events != events || trailer.sha256 != sha256 {
                return Err(format!(
                    "the trailer says {} events with SHA-256 {}, the file holds {events} with {sha256}",
                    trailer.events, trailer.sha256
                ));
            }
            if events > 0 && last != header.last_position {
                return Err(format!(
                    "the last event is at position {last}, the header says {}",
                    header.last_position
                ));
            }
            return Ok(ArchiveSummary {
                header,
                events,
                sha256,
            });
        }
        let event: ArchivedEvent = serde_json::from_slice(&line)
            .map_err(|err| format!("event line {} is not an archived event: {err}", events + 1))?;
        if event.position <= last || event.position > header.last_position {
            return Err(format!(
                "event at position {} is out of order or outside {}..={}",
                event.position, header.first_position, header.last_position
            ));
        }
        last = event.position;
        line.push(b'\n');
        hash.update(&line);
        events += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(position: i64) -> event::Model {
        event::Model {
            position,
            stream: "tenant:acme".into(),
            version: position,
            event_type: "TenantSecretAdded".into(),
            schema_version: 1,
            payload: r#"{"secret":"s\n"}"#.into(),
            metadata: r#"{"actor":"cli"}"#.into(),
            recorded_at: chrono::DateTime::from_timestamp(1_780_000_000 + position, 0).unwrap(),
            actor: Some("cli".into()),
        }
    }

    fn written(dir: &Path, rows: &[i64]) -> std::path::PathBuf {
        let path = dir.join("log.jsonl.gz");
        let header = ArchiveHeader {
            switchboard_archive: FORMAT,
            before: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
            first_position: rows[0],
            last_position: *rows.last().unwrap(),
        };
        let mut writer = ArchiveWriter::create(&path, &header).unwrap();
        for position in rows {
            writer.event(&row(*position)).unwrap();
        }
        writer.finish().unwrap();
        path
    }

    fn scratch() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("archive-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_written_archive_verifies_and_an_existing_file_is_never_overwritten() {
        let dir = scratch();
        let path = written(&dir, &[3, 4, 7]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "archives hold secrets");
        }
        let summary = verify_archive(&path).unwrap();
        assert_eq!(summary.events, 3);
        assert_eq!(summary.header.last_position, 7);
        let header = summary.header.clone();
        assert!(ArchiveWriter::create(&path, &header).is_err());
    }

    #[test]
    fn a_changed_event_fails_the_check() {
        let dir = scratch();
        let path = written(&dir, &[1, 2]);
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()),
            &mut text,
        )
        .unwrap();
        let tampered = text.replace("TenantSecretAdded", "TenantSecretRevoked");
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(tampered.as_bytes()).unwrap();
        std::fs::write(&path, gzip.finish().unwrap()).unwrap();
        let err = verify_archive(&path).unwrap_err();
        assert!(err.contains("SHA-256"), "{err}");
    }

    #[test]
    fn a_changed_header_fails_the_check() {
        let dir = scratch();
        let path = written(&dir, &[1, 2]);
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()),
            &mut text,
        )
        .unwrap();
        let tampered = text.replacen("1790000000", "1790000001", 1);
        let tampered = tampered.replacen("2026-09-21T", "2026-09-22T", 1);
        assert_ne!(tampered, text);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(tampered.as_bytes()).unwrap();
        std::fs::write(&path, gzip.finish().unwrap()).unwrap();
        assert!(verify_archive(&path).is_err());
    }

    #[test]
    fn a_cut_file_fails_the_check() {
        let dir = scratch();
        let path = written(&dir, &[1, 2, 3]);
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()),
            &mut text,
        )
        .unwrap();
        let cut: Vec<&str> = text.lines().take(3).collect();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all((cut.join("\n") + "\n").as_bytes()).unwrap();
        std::fs::write(&path, gzip.finish().unwrap()).unwrap();
        let err = verify_archive(&path).unwrap_err();
        assert!(err.contains("ends before the trailer"), "{err}");
    }
}
