//! Integration tests of the recording pipeline: an archive arrives in the
//! spool, is extracted, installed, served, protected, unpublished and
//! deleted; hostile archives end up in `failed/` with a reason.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};
use switchboard_recordings::archive::{self, ArchiveLimits};
use switchboard_recordings::layout::{self, Layout, LayoutError, Visibility};
use switchboard_recordings::metadata::rebase_urls;
use switchboard_recordings::protected::{
    InMemoryUsedTokens, PlaybackKey, mint_cookie, mint_link_token, redeem_link_token, verify_cookie,
};
use switchboard_recordings::spool::{self, Spool, SpoolConfig};
use tar::{Builder, EntryType, Header};

const ID: &str = "9a0364b9e99bb480dd25e1f0284c8555a8a4e6b1-1741369843904";
const PRESENTATION_ID: &str = "d2d9a672040fbde2a47a10bf6c37b6a4b5ae187f-1741369844000";

fn metadata(format: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<recording>
  <id>{ID}</id><state>published</state><published>true</published>
  <start_time>1741369843904</start_time><end_time>1741375480408</end_time>
  <participants>3</participants>
  <meeting id="{ID}" externalId="room-42" name="Physics" breakout="false"/>
  <meta><isBreakout>false</isBreakout><meetingId>room-42</meetingId><meetingName>Physics</meetingName>
    <bbb-origin>Moodle</bbb-origin><bbb-recording-ready-url>https://lms.example.org/ready</bbb-recording-ready-url></meta>
  <playback><format>{format}</format>
    <link>https://bbb1.example.org/playback/{format}/2.3/{ID}</link>
    <processing_time>1000</processing_time><duration>600000</duration>
    <extensions><preview><images>
      <image width="176" height="136" alt="Welcome">https://bbb1.example.org/{format}/{ID}/presentation/{PRESENTATION_ID}/thumbnails/thumb-1.png</image>
    </images></preview></extensions></playback>
</recording>"#
    )
}

fn add(b: &mut Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, path, data).unwrap();
}

fn add_raw(b: &mut Builder<Vec<u8>>, path: &str, kind: EntryType, data: &[u8], link: &str) {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// What Scalelite's post-publish script would send, gzip-compressed.
fn scalelite_archive() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for format in ["presentation", "video"] {
        let mut dir = Header::new_gnu();
        dir.set_entry_type(EntryType::dir());
        dir.set_mode(0o755);
        dir.set_size(0);
        b.append_data(&mut dir, format!("{format}/{ID}/"), &[][..])
            .unwrap();
        add(
            &mut b,
            &format!("{format}/{ID}/metadata.xml"),
            metadata(format).as_bytes(),
        );
        add(
            &mut b,
            &format!("{format}/{ID}/presentation/{PRESENTATION_ID}/thumbnails/thumb-1.png"),
            b"\x89PNG",
        );
        add(
            &mut b,
            &format!("{format}/{ID}/video/webcams.webm"),
            &vec![42u8; 100_000],
        );
    }
    let tar = b.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

struct Site {
    _dir: tempfile::TempDir,
    base: std::path::PathBuf,
    spool: Spool,
    layout: Layout,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    fs::create_dir(base.join("spool")).unwrap();
    Site {
        spool: Spool::new(SpoolConfig::new(base.join("spool"))),
        layout: Layout::create(base.join("recordings")).unwrap(),
        base,
        _dir: dir,
    }
}

/// One importer pass: what the worker will do.
fn import_pass(site: &mut Site) -> (usize, usize) {
    let (mut imported, mut failed) = (0, 0);
    let later = SystemTime::now() + Duration::from_secs(60);
    for ready in site.spool.scan(later).unwrap() {
        match archive::extract_file(
            &ready.path,
            &site.layout.staging_dir(),
            &ArchiveLimits::default(),
        ) {
            Ok(recording) => {
                site.layout.install_all(&recording).unwrap();
                site.spool.done(&ready.path).unwrap();
                imported += 1;
            }
            Err(e) => {
                assert!(e.is_bad_archive(), "{e}");
                site.spool.fail(&ready.path, &e.to_string()).unwrap();
                failed += 1;
            }
        }
    }
    (imported, failed)
}

fn tree_listing(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() {
                walk(&path, root, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn archive_to_playback_and_back() {
    let mut site = site();
    fs::write(
        site.base.join(format!("spool/{ID}.tar")),
        scalelite_archive(),
    )
    .unwrap();
    assert_eq!(import_pass(&mut site), (1, 0));
    assert!(site.base.join(format!("spool/done/{ID}.tar")).exists());

    let file = site
        .layout
        .resolve_playback(&format!("/presentation/{ID}/video/webcams.webm"))
        .unwrap();
    assert_eq!(fs::read(file).unwrap().len(), 100_000);
    let before = tree_listing(site.layout.root());

    // The same archive again changes nothing.
    fs::write(
        site.base.join(format!("spool/{ID}.tar")),
        scalelite_archive(),
    )
    .unwrap();
    assert_eq!(import_pass(&mut site), (1, 0));
    assert_eq!(tree_listing(site.layout.root()), before);
    assert!(site.base.join(format!("spool/done/{ID}.tar.1")).exists());

    let id = ID.parse().unwrap();
    site.layout.unpublish(&id).unwrap();
    let err = site
        .layout
        .resolve_playback(&format!("presentation/{ID}/metadata.xml"))
        .unwrap_err();
    assert!(matches!(err, LayoutError::NoSuchFile(_)), "{err}");
    site.layout.publish(&id).unwrap();
    assert!(
        site.layout
            .resolve_playback(&format!("video/{ID}/metadata.xml"))
            .is_ok()
    );

    // An operator's import of the tree finds the recording with its metadata.
    let scan = layout::import_dir(&site.layout.tree(Visibility::Published)).unwrap();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    assert_eq!(scan.recordings.len(), 1);
    let mut meta = scan.recordings[0].formats[0].metadata.clone();
    assert_eq!(meta.metadata["bbb-origin"], "Moodle");
    rebase_urls(&mut meta, "https://lb.example.org").unwrap();
    assert_eq!(
        meta.playback.link,
        format!("https://lb.example.org/playback/presentation/2.3/{ID}")
    );

    assert_eq!(site.layout.delete(&id).unwrap().len(), 2);
    assert!(site.layout.locate(&id).unwrap().is_empty());
}

#[tokio::test]
async fn protected_playback_flow() {
    let key = PlaybackKey::generate();
    let used = InMemoryUsedTokens::new();
    let id = ID.parse().unwrap();
    let now = switchboard_recordings::protected::unix_now();
    let link = mint_link_token(&key, &id, now + 60);
    let opened = redeem_link_token(&key, &link, now, &used).await.unwrap();
    assert_eq!(opened, id);
    assert!(
        redeem_link_token(&key, &link, now, &used).await.is_err(),
        "second use"
    );
    let cookie = mint_cookie(&key, &opened, now + 3600);
    assert!(verify_cookie(&key, &cookie, &id, now + 10).is_ok());
}

/// Appends the hostile part of an archive.
type Hostile = Box<dyn Fn(&mut Builder<Vec<u8>>)>;

#[test]
fn hostile_archives_go_to_failed_with_reasons() {
    let mut site = site();
    let canary = site.base.join("canary");
    let hostile: Vec<(&str, Hostile)> = vec![
        (
            "absolute path",
            Box::new(|b| add_raw(b, "/canary", EntryType::file(), b"x", "")),
        ),
        (
            "..",
            Box::new(|b| {
                add_raw(
                    b,
                    "presentation/../../../../canary",
                    EntryType::file(),
                    b"x",
                    "",
                )
            }),
        ),
        (
            "is a link",
            Box::new(|b| {
                add_raw(
                    b,
                    &format!("presentation/{ID}/passwd"),
                    EntryType::symlink(),
                    b"",
                    "/etc/passwd",
                );
                add_raw(
                    b,
                    &format!("presentation/{ID}/passwd"),
                    EntryType::file(),
                    b"owned",
                    "",
                );
            }),
        ),
        (
            "is a link",
            Box::new(|b| {
                add_raw(
                    b,
                    &format!("presentation/{ID}/h"),
                    EntryType::hard_link(),
                    b"",
                    "/etc/shadow",
                )
            }),
        ),
        (
            "FIFO",
            Box::new(|b| {
                add_raw(
                    b,
                    &format!("presentation/{ID}/f"),
                    EntryType::fifo(),
                    b"",
                    "",
                )
            }),
        ),
        (
            "mixes recordings",
            Box::new(|b| {
                let other = "1111111111111111111111111111111111111111-1741369843904";
                add(b, &format!("video/{other}/metadata.xml"), b"<recording/>");
            }),
        ),
        ("outside", Box::new(|b| add(b, "README", b"hi"))),
    ];
    for (n, (_, build)) in hostile.iter().enumerate() {
        let mut b = Builder::new(Vec::new());
        add(
            &mut b,
            &format!("presentation/{ID}/metadata.xml"),
            metadata("presentation").as_bytes(),
        );
        build(&mut b);
        // Numbered names: several files for the same recording.
        fs::write(
            site.base.join(format!("spool/{n}-{ID}.tar")),
            b.into_inner().unwrap(),
        )
        .unwrap();
    }
    assert_eq!(import_pass(&mut site), (0, hostile.len()));
    for (n, (reason, _)) in hostile.iter().enumerate() {
        let note = site
            .base
            .join(format!("spool/failed/{n}-{ID}.tar.reason.txt"));
        let text = fs::read_to_string(&note).unwrap();
        assert!(text.contains(reason), "archive {n}: {text}");
        assert!(
            site.base
                .join(format!("spool/failed/{n}-{ID}.tar"))
                .exists()
        );
    }
    assert!(!canary.exists());
    assert!(!Path::new("/canary").exists());
    assert!(tree_listing(&site.layout.staging_dir()).is_empty());
    assert!(tree_listing(&site.layout.tree(Visibility::Published)).is_empty());
}

#[test]
fn archive_limits_apply_through_the_file_api() {
    let site = site();
    let path = site.base.join(format!("{ID}.tgz"));
    fs::write(&path, scalelite_archive()).unwrap();
    let limits = ArchiveLimits {
        max_file_bytes: 50_000,
        ..ArchiveLimits::default()
    };
    let err = archive::extract_file(&path, &site.layout.staging_dir(), &limits).unwrap_err();
    assert!(err.to_string().contains("per file"), "{err}");
}

#[tokio::test]
async fn watcher_and_rescan_pick_up_an_rsync_delivery() {
    let mut site = site();
    let spool_dir = site.base.join("spool");
    let (_watcher, mut signals) = spool::watch(&spool_dir).unwrap();
    // rsync writes a hidden temporary file, then renames it.
    let temp = spool_dir.join(format!(".{ID}.tar.Xy12Ab"));
    fs::write(&temp, scalelite_archive()).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), signals.recv()).await;
    assert_eq!(got.unwrap(), Some(()));
    let later = SystemTime::now() + Duration::from_secs(60);
    assert!(
        site.spool.scan(later).unwrap().is_empty(),
        "temporary file ignored"
    );
    fs::rename(&temp, spool_dir.join(format!("{ID}.tar"))).unwrap();
    tokio::time::timeout(Duration::from_secs(10), signals.recv())
        .await
        .unwrap();
    assert_eq!(import_pass(&mut site), (1, 0));
}

mod stores;
