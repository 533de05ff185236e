//! The recordings conformance on an object store: the same archive imported
//! into the tree on disk and into S3 (a real SeaweedFS on loopback) answers
//! the same to getRecordings, plays back the same bytes (whole and ranged,
//! streamed or by presigned redirect), follows publish, unpublish, protect
//! and delete the same, and `migrate-store` moves a tree into S3.

use crate::recordings::{
    archive, archive_of, create_run, drop_in_spool, eventually, metadata_xml, public,
};
use crate::support::*;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::recording_ids::{FormatName, RecordId};
use switchboard_recordings::{RecordingStore, Visibility};

/// Where the harness keeps recordings.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Where {
    Disk,
    S3Stream,
    S3Redirect,
}

/// The S3 endpoint and credentials (tenants' stores use them too); the
/// deployment's store only when `url` is given.
fn s3_settings(settings: &mut switchboard_api::config::Settings, url: Option<String>) {
    let server = switchboard_s3_testing::shared();
    settings.recordings.store = url;
    settings.recordings.s3_endpoint = Some(server.endpoint.clone());
    settings.recordings.s3_region = Some("us-east-1".into());
    settings.recordings.s3_access_key_id = Some(server.access_key.clone());
    settings.recordings.s3_secret_access_key = Some(switchboard_api::config::SecretText(
        server.secret_key.clone(),
    ));
}

async fn harness_in(place: Where) -> Harness {
    let server = switchboard_s3_testing::shared();
    let url = server.url(&server.unique_prefix("api"));
    Harness::with_tags(Db::Sqlite, &[None], |settings| {
        settings.recordings.spool_settle_secs = 0.0;
        settings.recordings.rescan_interval_secs = 0.2;
        settings.recordings.retry_base_ms = 20;
        match place {
            Where::Disk => s3_settings(settings, None),
            Where::S3Stream => {
                s3_settings(settings, Some(url));
                settings.recordings.object_playback = "stream".into();
            }
            Where::S3Redirect => s3_settings(settings, Some(url)),
        }
    })
    .await
}

/// An archive whose formats each hold metadata.xml, `data.bin` (1000
/// bytes) and a webcam video `video/webcams.webm` (3000 bytes).
fn archive_with_video(id: &str, formats: &[&str], meeting: &str) -> Vec<u8> {
    archive_of(
        id,
        formats,
        |format| metadata_xml(id, format, meeting),
        &[("video/webcams.webm", video())],
    )
}

fn video() -> Vec<u8> {
    (0..3000u32).map(|n| (n % 97) as u8).collect()
}

fn data() -> Vec<u8> {
    (0..1000u32).map(|n| (n % 251) as u8).collect()
}

/// GETs a playback URL as a browser would: following a redirect to the
/// object store (with the same headers) and reporting where it went.
async fn fetch(
    harness: &Harness,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>, reqwest::header::HeaderMap, bool) {
    let mut request = harness.client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.unwrap();
    if answer.status().as_u16() == 302 && !url.contains("/recording-link/") {
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&switchboard_s3_testing::shared().endpoint),
            "{location}"
        );
        assert!(location.contains("X-Amz-Signature="), "{location}");
        let mut request = harness.client.get(&location);
        for (name, value) in headers {
            if !name.eq_ignore_ascii_case("cookie") {
                request = request.header(*name, *value);
            }
        }
        let answer = request.send().await.unwrap();
        let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
        return (
            status,
            answer.bytes().await.unwrap().to_vec(),
            headers,
            true,
        );
    }
    let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
    (
        status,
        answer.bytes().await.unwrap().to_vec(),
        headers,
        false,
    )
}

/// One recording's life through the BBB API and playback; returns the
/// getRecordings answer with the host replaced by `BASE`.
async fn life(place: Where) -> String {
    let harness = harness_in(place).await;
    let id = create_run(&harness, "room-s3", "").await;
    let spool = harness.state().recordings.spool_dir.clone();
    drop_in_spool(
        &spool,
        &format!("{id}.tar"),
        &archive_with_video(&id, &["presentation", "video"], "room-s3"),
    );
    eventually("the import", || async {
        harness.store().recording(&id).await.unwrap().is_some()
    })
    .await;
    let record_id = RecordId::parse(&id).unwrap();
    let files: &RecordingStore = harness.state().recordings.files();
    assert_eq!(files.layout().is_none(), place != Where::Disk);
    assert_eq!(
        files.locate(&record_id).await.unwrap(),
        [
            (
                FormatName::parse("presentation").unwrap(),
                Visibility::Published
            ),
            (FormatName::parse("video").unwrap(), Visibility::Published),
        ],
        "{place:?}"
    );
    let base = public(&harness);
    let listed = harness.get("getRecordings", "meetingID=room-s3").await;
    listed.assert_success();

    // Media go to the store by presigned redirect (in that mode); the
    // rest is always served here (the player fetches it with scripts).
    let media = format!("{base}/presentation/{id}/video/webcams.webm");
    let (status, body, headers, redirected) = fetch(&harness, &media, &[]).await;
    assert_eq!((status, body), (200, video()), "{place:?}");
    assert_eq!(redirected, place == Where::S3Redirect);
    assert_eq!(headers["content-type"], "video/webm", "{place:?}");
    let (status, body, _, _) = fetch(&harness, &media, &[("range", "bytes=-100")]).await;
    assert_eq!((status, body), (206, video()[2900..].to_vec()), "{place:?}");
    let asset = format!("{base}/presentation/{id}/data.bin");
    let (status, body, headers, redirected) = fetch(&harness, &asset, &[]).await;
    assert_eq!((status, body), (200, data()), "{place:?}");
    assert!(!redirected, "{place:?}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, body, headers, _) = fetch(&harness, &asset, &[("range", "bytes=10-19")]).await;
    assert_eq!((status, body), (206, data()[10..20].to_vec()), "{place:?}");
    assert_eq!(headers["content-range"], "bytes 10-19/1000");
    let (status, _, _, _) = fetch(&harness, &asset, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 304, "{place:?}");
    let (status, _, _, _) =
        fetch(&harness, &format!("{base}/presentation/{id}/missing"), &[]).await;
    assert_eq!(status, 404, "{place:?}");

    harness
        .get("publishRecordings", &format!("recordID={id}&publish=false"))
        .await
        .assert_success();
    assert_eq!(fetch(&harness, &asset, &[]).await.0, 404, "{place:?}");
    assert!(
        files
            .record_ids(Visibility::Published)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        files.record_ids(Visibility::Unpublished).await.unwrap(),
        std::slice::from_ref(&record_id)
    );
    harness
        .get("publishRecordings", &format!("recordID={id}&publish=true"))
        .await
        .assert_success();
    assert_eq!(fetch(&harness, &asset, &[]).await.0, 200, "{place:?}");

    // Protected: the one-time link and its cookie, and only then the object.
    harness
        .get("updateRecordings", &format!("recordID={id}&protect=true"))
        .await
        .assert_success();
    assert_eq!(fetch(&harness, &asset, &[]).await.0, 404, "{place:?}");
    let link = harness
        .get("getRecordings", &format!("recordID={id}"))
        .await
        .field("url")
        .unwrap();
    let redeemed = harness.client.get(&link).send().await.unwrap();
    assert_eq!(redeemed.status().as_u16(), 302);
    let cookie = redeemed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let answer = harness
        .client
        .get(&asset)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.headers()["cache-control"],
        "private, no-store",
        "{place:?}"
    );
    let (status, body, _, _) = fetch(&harness, &asset, &[("cookie", &cookie)]).await;
    assert_eq!((status, body), (200, data()), "{place:?}");
    let (status, body, _, _) = fetch(&harness, &media, &[("cookie", &cookie)]).await;
    assert_eq!((status, body), (200, video()), "{place:?}");
    let redirect = harness
        .client
        .get(&media)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.headers()["cache-control"], "private, no-store");
    harness
        .get("updateRecordings", &format!("recordID={id}&protect=false"))
        .await
        .assert_success();

    let answer = listed.body.replace(&base, "BASE");
    harness
        .get("deleteRecordings", &format!("recordID={id}"))
        .await
        .assert_success();
    assert!(
        files.locate(&record_id).await.unwrap().is_empty(),
        "{place:?}"
    );
    assert_eq!(fetch(&harness, &asset, &[]).await.0, 404, "{place:?}");
    answer.replace(&id, "ID")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_behave_the_same_on_disk_and_in_s3() {
    let disk = life(Where::Disk).await;
    let streamed = life(Where::S3Stream).await;
    let redirected = life(Where::S3Redirect).await;
    assert!(disk.contains("<recordID>ID</recordID>"), "{disk}");
    assert_eq!(streamed, disk);
    assert_eq!(redirected, disk);
}

/// Runs the `switchboard` binary on the harness's database and recordings
/// directory, with S3 reached through the standard environment variables.
fn switchboard(harness: &Harness, args: &[&str]) -> (bool, String, String) {
    let server = switchboard_s3_testing::shared();
    let recordings = &harness.state().recordings.settings;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_DATABASE", &harness.database_url)
        .env("SWITCHBOARD_SECRET", SECRET)
        .env("SWITCHBOARD_RECORDINGS_DIR", &recordings.dir)
        .env("SWITCHBOARD_SPOOL_DIR", &recordings.spool_dir)
        .env("SWITCHBOARD_S3_ENDPOINT", &server.endpoint)
        .env("AWS_ACCESS_KEY_ID", &server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
        .env("AWS_REGION", "us-east-1")
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_URL")
        .env_remove("SWITCHBOARD_TOKEN")
        .env_remove("SWITCHBOARD_RECORDINGS_STORE")
        .output()
        .expect("run switchboard");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_store_takes_new_recordings_and_migrate_store_moves_a_tree() {
    use crate::recordings::{add_school, school_url};
    let harness = harness_in(Where::Disk).await;
    let server = switchboard_s3_testing::shared();
    let spool = harness.state().recordings.spool_dir.clone();
    let stores = &harness.state().recordings.stores;

    // The default tenant's recording: on disk.
    let on_disk = create_run(&harness, "room-disk", "").await;
    drop_in_spool(
        &spool,
        &format!("{on_disk}.tar"),
        &archive(&on_disk, &["presentation"], "room-disk"),
    );
    eventually("the import", || async {
        harness.store().recording(&on_disk).await.unwrap().is_some()
    })
    .await;

    // A tenant with its own store, set with the CLI while serve runs.
    add_school(&harness).await;
    let school_store = server.url(&server.unique_prefix("school"));
    let (ok, out, err) = switchboard(
        &harness,
        &[
            "tenants",
            "recordings-store",
            "school",
            "--store",
            &school_store,
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("recordings in:   {school_store}")),
        "{out}"
    );
    let (ok, _, err) = switchboard(
        &harness,
        &[
            "tenants",
            "recordings-store",
            "school",
            "--store",
            "gs://nope",
        ],
    );
    assert!(!ok && err.contains("is not usable"), "{err}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let created = harness
        .get_raw(&school_url(
            &harness,
            "create",
            "name=S&meetingID=room-school",
        ))
        .await;
    created.assert_success();
    let in_s3 = created.field("internalMeetingID").unwrap();
    drop_in_spool(
        &spool,
        &format!("{in_s3}.tar"),
        &archive(&in_s3, &["presentation"], "room-school"),
    );
    eventually("the school's import", || async {
        harness.store().recording(&in_s3).await.unwrap().is_some()
    })
    .await;
    let school = stores.open(&school_store).unwrap();
    let in_s3_id = RecordId::parse(&in_s3).unwrap();
    assert_eq!(school.locate(&in_s3_id).await.unwrap().len(), 1);
    assert!(
        stores
            .default_store()
            .locate(&in_s3_id)
            .await
            .unwrap()
            .is_empty()
    );
    let asset = format!("{}/presentation/{in_s3}/data.bin", public(&harness));
    let (status, body, _, redirected) = fetch(&harness, &asset, &[]).await;
    assert_eq!((status, body, redirected), (200, data(), false));

    // The deployment's tree into S3: copied, verified, resumable.
    let target = server.url(&server.unique_prefix("migrated"));
    let (ok, out, err) = switchboard(&harness, &["recordings", "migrate-store", "--to", &target]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("[1/1] {on_disk}: 2 objects")) && out.contains("copied and verified"),
        "{out}"
    );
    let moved = stores.open(&target).unwrap();
    let on_disk_id = RecordId::parse(&on_disk).unwrap();
    assert_eq!(
        moved.locate(&on_disk_id).await.unwrap(),
        stores.default_store().locate(&on_disk_id).await.unwrap()
    );
    let (ok, out, err) = switchboard(&harness, &["recordings", "migrate-store", "--to", &target]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("0 objects (0 bytes) copied and verified, 2 already there"),
        "{out}"
    );
    // A copy that differs is copied again.
    let (objects, prefix) = moved.objects().unwrap();
    let data_key = prefix
        .clone()
        .join("published")
        .join("presentation")
        .join(on_disk.as_str())
        .join("data.bin");
    use object_store::ObjectStoreExt as _;
    objects
        .put(&data_key, vec![0u8; 1000].into())
        .await
        .unwrap();
    let (ok, out, err) = switchboard(
        &harness,
        &[
            "recordings",
            "migrate-store",
            "--to",
            &target,
            "--delete-source",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("1 objects (1000 bytes) copied and verified, 1 already there; source removed"),
        "{out}"
    );
    let copied = objects.get(&data_key).await.unwrap().bytes().await.unwrap();
    assert_eq!(copied.to_vec(), data());
    assert!(
        stores
            .default_store()
            .locate(&on_disk_id)
            .await
            .unwrap()
            .is_empty()
    );
}
