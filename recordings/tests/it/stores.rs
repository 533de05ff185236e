//! The same recording life on the tree on disk and on a real S3-compatible
//! server (SeaweedFS on loopback): install, list, serve, move, delete, and
//! a file large enough for a multipart upload.

use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use std::path::Path;
use switchboard_domain::recording_ids::{FormatName, RecordId};
use switchboard_recordings::layout::{LayoutError, Visibility};
use switchboard_recordings::object_tree::PART_SIZE;
use switchboard_recordings::{FormatDir, PlaybackFile, RecordingStore, S3Settings, StoreLocation};

const ID: &str = "9a0364b9e99bb480dd25e1f0284c8555a8a4e6b1-1741369843904";

fn staged(root: &Path, format: &str, big: usize) -> FormatDir {
    let dir = root.join(format).join(ID);
    std::fs::create_dir_all(dir.join("video")).unwrap();
    std::fs::write(dir.join("metadata.xml"), super::metadata(format)).unwrap();
    std::fs::write(dir.join("index.html"), "<html></html>").unwrap();
    let bytes: Vec<u8> = (0..big).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("video/webcams.webm"), bytes).unwrap();
    FormatDir::load(
        &dir,
        FormatName::parse(format).unwrap(),
        RecordId::parse(ID).unwrap(),
    )
    .unwrap()
}

fn s3_settings() -> (S3Settings, &'static switchboard_s3_testing::TestS3) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = switchboard_s3_testing::shared();
    (
        S3Settings {
            endpoint: Some(server.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some(server.access_key.clone()),
            secret_access_key: Some(server.secret_key.clone()),
            virtual_hosted: false,
        },
        server,
    )
}

/// Reads a served file whole, whichever store it is in.
async fn read(store: &RecordingStore, file: &PlaybackFile) -> Vec<u8> {
    match file {
        PlaybackFile::File(path) => std::fs::read(path).unwrap(),
        PlaybackFile::Object(meta) => {
            let (objects, _) = store.objects().unwrap();
            objects
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec()
        }
    }
}

async fn one_life(store: RecordingStore, staging: &Path) {
    let id = RecordId::parse(ID).unwrap();
    let big = PART_SIZE * 2 + 12_345;
    let presentation = staged(&staging.join("a"), "presentation", big);
    let video = staged(&staging.join("b"), "video", 10);
    let first = store
        .install(&presentation, Visibility::Published)
        .await
        .unwrap();
    assert!(first.new);
    let second = store
        .install(&video, Visibility::Unpublished)
        .await
        .unwrap();
    assert_eq!(
        second.visibility,
        Visibility::Published,
        "{}",
        store.describe()
    );
    assert_eq!(
        store.locate(&id).await.unwrap(),
        [
            (
                FormatName::parse("presentation").unwrap(),
                Visibility::Published
            ),
            (FormatName::parse("video").unwrap(), Visibility::Published),
        ]
    );
    assert_eq!(
        store.record_ids(Visibility::Published).await.unwrap(),
        std::slice::from_ref(&id)
    );

    let file = store
        .resolve_playback(&format!("presentation/{ID}/video/webcams.webm"))
        .await
        .unwrap();
    let bytes = read(&store, &file).await;
    assert_eq!(bytes.len(), big);
    let expected: Vec<u8> = (0..big).map(|i| (i % 251) as u8).collect();
    assert_eq!(Sha256::digest(&bytes), Sha256::digest(&expected));
    assert!(matches!(
        store
            .resolve_playback(&format!("presentation/{ID}/../{ID}/index.html"))
            .await,
        Err(LayoutError::Refused { .. })
    ));
    assert!(matches!(
        store
            .resolve_playback(&format!("presentation/{ID}/missing.html"))
            .await,
        Err(LayoutError::NoSuchFile(_))
    ));

    assert_eq!(
        store
            .set_visibility(&id, Visibility::Unpublished)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .record_ids(Visibility::Published)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .resolve_playback(&format!("presentation/{ID}/index.html"))
            .await,
        Err(LayoutError::NoSuchFile(_))
    ));
    store
        .set_visibility(&id, Visibility::Published)
        .await
        .unwrap();
    assert!(
        store
            .resolve_playback(&format!("video/{ID}/index.html"))
            .await
            .is_ok()
    );
    assert_eq!(store.delete(&id).await.unwrap().len(), 2);
    assert!(store.locate(&id).await.unwrap().is_empty());
    assert!(matches!(
        store.delete(&id).await,
        Err(LayoutError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_lives_the_same_on_disk_and_in_s3() {
    let temp = tempfile::tempdir().unwrap();
    let (s3, server) = s3_settings();
    let disk = RecordingStore::open(
        &StoreLocation::Dir(temp.path().join("tree")),
        &s3,
        temp.path(),
    )
    .unwrap();
    one_life(disk, &temp.path().join("staged-disk")).await;

    let location = StoreLocation::parse(&server.url(&server.unique_prefix("life"))).unwrap();
    let object = RecordingStore::open(&location, &s3, temp.path()).unwrap();
    one_life(object, &temp.path().join("staged-s3")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_serve_the_object_and_ranges() {
    let temp = tempfile::tempdir().unwrap();
    let (s3, server) = s3_settings();
    let location = StoreLocation::parse(&server.url(&server.unique_prefix("presign"))).unwrap();
    let store = RecordingStore::open(&location, &s3, temp.path()).unwrap();
    let format = staged(temp.path(), "presentation", 4096);
    store.install(&format, Visibility::Published).await.unwrap();
    let PlaybackFile::Object(meta) = store
        .resolve_playback(&format!("presentation/{ID}/index.html"))
        .await
        .unwrap()
    else {
        panic!("an object store serves objects");
    };
    let RecordingStore::Object(tree) = &store else {
        unreachable!()
    };
    let url = tree
        .presign(&meta.location, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let client = reqwest::Client::new();
    let answer = client.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["content-type"].to_str().unwrap(),
        "text/html"
    );
    assert_eq!(answer.text().await.unwrap(), "<html></html>");
    let ranged = client
        .get(&url)
        .header("range", "bytes=1-4")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.text().await.unwrap(), "html");
    // The URL is bound to its object: another key with the same signature fails.
    let forged = url.replace("index.html", "metadata.xml");
    assert_eq!(client.get(&forged).send().await.unwrap().status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_migrates_from_s3_to_a_tree_through_staging() {
    let temp = tempfile::tempdir().unwrap();
    let (s3, server) = s3_settings();
    let location = StoreLocation::parse(&server.url(&server.unique_prefix("to-disk"))).unwrap();
    let object = RecordingStore::open(&location, &s3, temp.path()).unwrap();
    let format = staged(&temp.path().join("staged"), "presentation", PART_SIZE + 10);
    object
        .install(&format, Visibility::Unpublished)
        .await
        .unwrap();
    let disk = RecordingStore::open(
        &StoreLocation::Dir(temp.path().join("tree")),
        &s3,
        temp.path(),
    )
    .unwrap();
    let id = RecordId::parse(ID).unwrap();
    let copied = switchboard_recordings::migrate::copy_recording(&object, &disk, &id)
        .await
        .unwrap();
    assert_eq!((copied.objects, copied.present), (3, 0));
    assert_eq!(
        disk.locate(&id).await.unwrap(),
        object.locate(&id).await.unwrap()
    );
    let layout = disk.layout().unwrap();
    let dir = layout.format_dir(
        Visibility::Unpublished,
        &FormatName::parse("presentation").unwrap(),
        &id,
    );
    assert_eq!(
        std::fs::read(dir.join("video/webcams.webm")).unwrap().len(),
        PART_SIZE + 10
    );
    // Nothing is left in staging; a second run finds everything there.
    assert_eq!(std::fs::read_dir(layout.staging_dir()).unwrap().count(), 0);
    let again = switchboard_recordings::migrate::copy_recording(&object, &disk, &id)
        .await
        .unwrap();
    assert_eq!((again.objects, again.present), (0, 3));
}
