//! Import throughput with realistic archives (`switchboard recordings
//! bench-import`): recordings of 50 to 500 MB, imported from the spool into
//! the deployment's store (the tree on disk, or S3), beside a baseline of
//! the same run that only moves the bytes (a file copy on the same disk, or
//! one streamed upload of the archive to the same bucket), with the
//! process's peak memory around each import.
//!
//! An archive is written to disk as it is generated, never held whole: a
//! presentation with a webcam video (70 %), a screen share (25 %) and 60
//! slide images, of incompressible bytes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use switchboard_app::recordings::RecordingService;
use switchboard_app::recordings::import::process_spool;
use switchboard_domain::ids::MeetingId;
use switchboard_recordings::spool::{Spool, SpoolConfig};

macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Incompressible bytes, cheaply (xorshift).
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let bytes = self.state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn noise(size: u64, seed: u64) -> Noise {
    Noise {
        state: seed | 1,
        left: size,
    }
}

/// Writes `<dir>/<id>.tar` of about `bytes`, streamed; returns its path
/// and size.
fn write_archive(
    dir: &Path,
    id: &str,
    meeting: &str,
    bytes: u64,
) -> anyhow::Result<(PathBuf, u64)> {
    let path = dir.join(format!("{id}.tar"));
    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut builder = tar::Builder::new(file);
    let metadata = format!(
        "<recording><id>{id}</id><state>published</state><published>true</published>\
         <start_time>{start}</start_time><end_time>{start}</end_time><participants>30</participants>\
         <meeting id=\"{id}\" externalId=\"{meeting}\" name=\"Bench\" breakout=\"false\"/>\
         <meta><bbb-origin>bench</bbb-origin></meta><playback><format>presentation</format>\
         <link>https://bbb1.example.org/playback/presentation/2.3/{id}</link>\
         <processing_time>1</processing_time><duration>3600000</duration></playback></recording>",
        start = &id[41..]
    );
    let mut add = |name: String, size: u64, data: &mut dyn Read| -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, format!("presentation/{id}/{name}"), data)?;
        Ok(())
    };
    let slides = 60u64;
    let slide = (bytes / 20 / slides).max(1);
    let webcams = bytes * 70 / 100;
    let deskshare = bytes * 25 / 100;
    add("video/webcams.webm".into(), webcams, &mut noise(webcams, 1))?;
    add(
        "deskshare/deskshare.webm".into(),
        deskshare,
        &mut noise(deskshare, 2),
    )?;
    for n in 0..slides {
        add(
            format!("presentation/slides/slide-{n}.png"),
            slide,
            &mut noise(slide, 3 + n),
        )?;
    }
    add(
        "metadata.xml".into(),
        metadata.len() as u64,
        &mut metadata.as_bytes(),
    )?;
    let mut file = builder.into_inner()?;
    file.flush()?;
    drop(file);
    let size = std::fs::metadata(&path)?.len();
    Ok((path, size))
}

/// The process's resident memory now and its peak, in MiB
/// (`/proc/self/status`).
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak so the next import's own peak is read.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1_000_000.0 / elapsed.as_secs_f64().max(1e-9)
}

/// Moves the archive's bytes as plainly as the store allows: a file copy
/// into the tree's filesystem (through the page cache, as the import's own
/// writes: neither syncs), or one streamed upload to the bucket.
async fn baseline(
    service: &RecordingService,
    archive: &Path,
    scratch: &Path,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    match service.files().object_tree() {
        None => {
            let copy = scratch.join("baseline.copy");
            std::fs::copy(archive, &copy)?;
            let elapsed = started.elapsed();
            std::fs::remove_file(&copy)?;
            Ok(elapsed)
        }
        Some(tree) => {
            let key = tree.prefix().clone().join("bench-baseline.tar");
            tree.upload(archive, &key).await?;
            let elapsed = started.elapsed();
            use object_store::ObjectStoreExt as _;
            tree.store().delete(&key).await?;
            Ok(elapsed)
        }
    }
}

/// Imports `each` archives of every size in `sizes_mb` and prints MB/s
/// beside the baseline, and memory.
pub async fn run(service: &RecordingService, sizes_mb: &[u64], each: usize) -> anyhow::Result<()> {
    let scratch = service.settings.dir.join(format!(
        ".bench-import-{}",
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let spool_dir = scratch.join("spool");
    std::fs::create_dir_all(&spool_dir)?;
    out!(
        "import into {} ({} archive(s) per size)",
        service.files().describe(),
        each
    );
    let result = async {
        let stamp = chrono::Utc::now().timestamp_millis();
        let mut n = 0i64;
        for &size in sizes_mb {
            let mut imports = Vec::new();
            let mut baselines = Vec::new();
            let mut peaks = Vec::new();
            let mut archive_bytes = 0;
            for _ in 0..each {
                n += 1;
                let meeting = format!("bench-import-{n}");
                let id = MeetingId::parse(&meeting)?.internal_id(stamp + n);
                let (path, bytes) = write_archive(&spool_dir, &id, &meeting, size * 1_000_000)?;
                archive_bytes = bytes;
                baselines.push(baseline(service, &path, &scratch).await?);
                let mut spool = Spool::new(SpoolConfig {
                    dir: spool_dir.clone(),
                    settle: Duration::ZERO,
                    keep_done: false,
                });
                let (before, _) = memory();
                reset_peak();
                let started = Instant::now();
                let imported = process_spool(service, &mut spool).await;
                let elapsed = started.elapsed();
                let (_, peak) = memory();
                anyhow::ensure!(imported == 1, "the archive was not imported");
                imports.push(elapsed);
                peaks.push((before, peak));
            }
            imports.sort();
            baselines.sort();
            let import = imports[imports.len() / 2];
            let base = baselines[baselines.len() / 2];
            let (before, peak) = peaks
                .iter()
                .copied()
                .fold((0.0f64, 0.0f64), |(b, p), (b2, p2)| (b.max(b2), p.max(p2)));
            out!(
                "  {size} MB archive ({archive_bytes} bytes): import {:.0} MB/s ({:.2} s), baseline {:.0} MB/s, ratio {:.2}; RSS {before:.0} MiB before, peak {peak:.0} MiB during",
                mb_per_s(archive_bytes, import),
                import.as_secs_f64(),
                mb_per_s(archive_bytes, base),
                base.as_secs_f64() / import.as_secs_f64().max(1e-9),
            );
        }
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
