//! Recordings end to end over real HTTP: spool import, getRecordings and the
//! other recording calls, playback serving, protected links, callbacks, the
//! upload endpoint and text tracks, on SQLite and PostgreSQL.

use crate::support::*;
use std::path::Path;
use std::time::{Duration, Instant};
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::tenant::TenantCommand;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

pub(crate) fn metadata_xml(id: &str, format: &str, meeting: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<recording>
  <id>{id}</id><state>published</state><published>true</published>
  <start_time>1741369843904</start_time><end_time>1741375480408</end_time>
  <participants>20</participants>
  <meeting id="{id}" externalId="{meeting}" name="Physics &amp; Maths" breakout="false"/>
  <meta><isBreakout>false</isBreakout><meetingId>{meeting}</meetingId>
    <meetingName>Physics &amp; Maths</meetingName><bbb-origin>Moodle</bbb-origin></meta>
  <playback><format>{format}</format>
    <link>https://bbb1.example.org/playback/{format}/2.3/{id}</link>
    <processing_time>652354</processing_time><duration>4684838</duration>
    <extensions><preview><images>
      <image width="176" height="136" alt="Welcome">https://bbb1.example.org/{format}/{id}/presentation/p1/thumbnails/thumb-1.png</image>
    </images></preview></extensions></playback>
</recording>
"#
    )
}

/// A `<recordID>.tar` with the given formats, each with metadata.xml and a
/// 1000-byte `data.bin`.
pub(crate) fn archive(id: &str, formats: &[&str], meeting: &str) -> Vec<u8> {
    archive_with(id, formats, |format| metadata_xml(id, format, meeting))
}

/// As [`archive`], with each format's metadata.xml from `metadata`.
fn archive_with(id: &str, formats: &[&str], metadata: impl Fn(&str) -> String) -> Vec<u8> {
    archive_of(id, formats, metadata, &[])
}

/// A `<recordID>.tar` whose formats each hold metadata.xml (from
/// `metadata`), the 1000-byte `data.bin` and the `extra` files.
pub(crate) fn archive_of(
    id: &str,
    formats: &[&str],
    metadata: impl Fn(&str) -> String,
    extra: &[(&str, Vec<u8>)],
) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for format in formats {
        let files = [
            ("metadata.xml", metadata(format).into_bytes()),
            ("data.bin", (0..1000u32).map(|n| (n % 251) as u8).collect()),
        ];
        for (name, content) in files.iter().chain(extra) {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(
                    &mut header,
                    format!("{format}/{id}/{name}"),
                    content.as_slice(),
                )
                .unwrap();
        }
    }
    builder.into_inner().unwrap()
}

pub(crate) fn drop_in_spool(spool: &Path, name: &str, bytes: &[u8]) {
    let temp = spool.join(format!(".{name}.part"));
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, spool.join(name)).unwrap();
}

pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn recordings_harness(db: Db) -> Harness {
    Harness::with_tags(db, &[None], |settings| {
        settings.recordings.spool_settle_secs = 0.0;
        settings.recordings.rescan_interval_secs = 0.2;
        settings.recordings.retry_base_ms = 20;
    })
    .await
}

/// A signed URL of tenant `school`'s API.
pub(crate) fn school_url(harness: &Harness, call: &str, query: &str) -> String {
    let api = format!("http://{}/t/school/bigbluebutton/api/", harness.app.addr);
    signed_url(
        &api,
        call,
        query,
        "school-secret-1",
        ChecksumAlgorithm::Sha1,
    )
}

/// Creates tenant `school` and waits until the facade knows it.
pub(crate) async fn add_school(harness: &Harness) {
    harness
        .store()
        .execute_tenant(
            "school",
            &TenantCommand::Create {
                name: "school".into(),
                secret: "school-secret-1".into(),
            },
            &EventMetadata::actor("test"),
        )
        .await
        .unwrap();
    eventually("the tenant to be known", || async {
        harness
            .get_raw(&school_url(harness, "getRecordings", ""))
            .await
            .returncode()
            == "SUCCESS"
    })
    .await;
}

/// Creates `meeting` and returns its record id (the run's internal id).
pub(crate) async fn create_run(harness: &Harness, meeting: &str, extra: &str) -> String {
    let created = harness
        .get("create", &format!("name=Test&meetingID={meeting}{extra}"))
        .await;
    created.assert_success();
    created.field("internalMeetingID").unwrap()
}

pub(crate) fn public(harness: &Harness) -> String {
    format!("http://{}", harness.app.addr)
}

async fn stream_events(harness: &Harness, id: &str) -> usize {
    let stream = format!("recording:{id}");
    harness
        .store()
        .stream_events(&stream.parse().unwrap())
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_import_then_get_publish_update_delete_on_both_databases() {
    for db in BOTH {
        let harness = recordings_harness(db).await;
        let id = create_run(&harness, "room-1", "").await;
        let spool = harness.state().recordings.spool_dir.clone();
        let root = harness.state().recordings.settings.dir.clone();
        drop_in_spool(
            &spool,
            &format!("{id}.tar"),
            &archive(&id, &["presentation"], "room-1"),
        );
        eventually("the import", || async {
            harness.store().recording(&id).await.unwrap().is_some()
        })
        .await;
        let base = public(&harness);
        let listed = harness.get("getRecordings", "meetingID=room-1").await;
        listed.assert_success();
        assert_eq!(
            listed.body,
            format!(
                "<response><returncode>SUCCESS</returncode><recordings><recording>\
                 <recordID>{id}</recordID><meetingID>room-1</meetingID><internalMeetingID>{id}</internalMeetingID>\
                 <name>Physics &amp; Maths</name><isBreakout>false</isBreakout><published>true</published>\
                 <state>published</state><startTime>1741369843904</startTime><endTime>1741375480408</endTime>\
                 <participants>20</participants><protected>false</protected>\
                 <metadata><bbb-origin>Moodle</bbb-origin></metadata><playback><format><type>presentation</type>\
                 <url>{base}/playback/presentation/2.3/{id}</url><processingTime>652354</processingTime><length>78</length>\
                 <preview><images><image width=\"176\" height=\"136\" alt=\"Welcome\">{base}/presentation/{id}/presentation/p1/thumbnails/thumb-1.png</image></images></preview>\
                 </format></playback></recording></recordings></response>"
            ),
            "{db:?}"
        );
        assert!(
            root.join(format!("published/presentation/{id}/data.bin"))
                .is_file()
        );
        assert!(
            spool.join("done").join(format!("{id}.tar")).is_file(),
            "archive moved to done/"
        );
        // Sized at import, for the tenants' usage: its two files.
        let imported = harness.store().recording(&id).await.unwrap().unwrap();
        let expected = 1000 + metadata_xml(&id, "presentation", "room-1").len() as u64;
        assert_eq!(imported.formats[0].bytes, expected, "{db:?}");

        // The same archive again changes nothing; a second format merges in.
        let events = stream_events(&harness, &id).await;
        drop_in_spool(
            &spool,
            &format!("{id}.tar"),
            &archive(&id, &["presentation"], "room-1"),
        );
        eventually("the second archive to leave the spool", || async {
            !spool.join(format!("{id}.tar")).exists()
        })
        .await;
        assert_eq!(
            stream_events(&harness, &id).await,
            events,
            "{db:?}: nothing new"
        );
        drop_in_spool(&spool, &format!("{id}.tar.gz"), &{
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&archive(&id, &["video"], "room-1")).unwrap();
            gz.finish().unwrap()
        });
        eventually("the video format", || async {
            harness
                .store()
                .recording(&id)
                .await
                .unwrap()
                .unwrap()
                .formats
                .len()
                == 2
        })
        .await;

        // A bad archive is moved aside with its reason; the importer goes on.
        let evil_id = format!("{}-1741369843904", "a".repeat(40));
        let mut evil = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_cksum();
        evil.append_data(
            &mut header,
            format!("presentation/{evil_id}/metadata.xml"),
            &b"x"[..],
        )
        .unwrap();
        drop_in_spool(
            &spool,
            &format!("{evil_id}.tar"),
            &evil.into_inner().unwrap(),
        );
        let reason = spool
            .join("failed")
            .join(format!("{evil_id}.tar.reason.txt"));
        eventually("the bad archive to be moved aside", || async {
            reason.is_file()
        })
        .await;
        assert!(
            std::fs::read_to_string(&reason)
                .unwrap()
                .contains("metadata.xml")
        );

        // Filters, pagination.
        let other = create_run(&harness, "room-2", "").await;
        drop_in_spool(
            &spool,
            &format!("{other}.tar"),
            &archive(&other, &["presentation"], "room-2"),
        );
        eventually("the second recording", || async {
            harness.store().recording(&other).await.unwrap().is_some()
        })
        .await;
        let page = harness.get("getRecordings", "limit=1&offset=1").await;
        page.assert_success();
        assert_eq!(page.field("totalElements").as_deref(), Some("2"), "{db:?}");
        assert_eq!(page.body.matches("<recording>").count(), 1);
        let by_prefix = harness
            .get("getRecordings", &format!("recordID={}", &other[..20]))
            .await;
        assert_eq!(by_prefix.field("recordID").as_deref(), Some(other.as_str()));
        let by_meta = harness.get("getRecordings", "meta_bbb-origin=Nobody").await;
        assert_eq!(
            by_meta.body,
            "<response><returncode>SUCCESS</returncode><recordings></recordings>\
             <messageKey>noRecordings</messageKey><message>There are no recordings for the meeting(s).</message></response>"
        );

        // Playback: file with validators and ranges; gone when unpublished.
        let asset = format!("{base}/presentation/{id}/data.bin");
        let response = harness
            .client
            .get(&asset)
            .header("range", "bytes=10-19")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 206, "{db:?}");
        assert!(response.headers().get("etag").is_some());
        assert!(response.headers().get("last-modified").is_some());
        assert_eq!(
            response.headers().get("cache-control").unwrap(),
            "public, max-age=3600"
        );
        let bytes = response.bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), &(10..20u8).collect::<Vec<_>>()[..]);
        for bad in [
            format!("{base}/presentation/{id}/../../unpublished"),
            format!("{base}/presentation/{id}/%2e%2e/x"),
            format!("{base}/presentation/not-an-id/data.bin"),
        ] {
            let status = harness.client.get(&bad).send().await.unwrap().status();
            assert_eq!(status.as_u16(), 404, "{bad}");
        }
        let unpublished_answer = harness
            .get("publishRecordings", &format!("recordID={id}&publish=false"))
            .await;
        unpublished_answer.assert_success();
        assert_eq!(
            unpublished_answer.field("published").as_deref(),
            Some("false"),
            "BBB echoes the requested state (issue 14.5)"
        );
        assert!(
            root.join(format!("unpublished/presentation/{id}/data.bin"))
                .is_file()
        );
        assert_eq!(
            harness
                .client
                .get(&asset)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        let unpublished = harness
            .get("getRecordings", &format!("recordID={id}&state=unpublished"))
            .await;
        assert_eq!(unpublished.field("state").as_deref(), Some("unpublished"));
        let published_answer = harness
            .get("publishRecordings", &format!("recordID={id}&publish=true"))
            .await;
        published_answer.assert_success();
        assert_eq!(published_answer.field("published").as_deref(), Some("true"));
        assert_eq!(
            harness
                .client
                .get(&asset)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );

        // Metadata updates.
        harness
            .get(
                "updateRecordings",
                &format!("recordID={id}&meta_course=Physics&meta_bbb-origin="),
            )
            .await
            .assert_success();
        let updated = harness.get("getRecordings", "meta_course=Physics").await;
        assert!(
            updated
                .body
                .contains("<metadata><course>Physics</course></metadata>"),
            "{}",
            updated.body
        );

        // Errors, exactly as BBB words them.
        assert_eq!(
            harness.get("publishRecordings", "publish=true").await.body,
            "<response><returncode>FAILED</returncode><messageKey>missingParamRecordID</messageKey>\
             <message>You must specify a recordID.</message></response>"
        );
        assert_eq!(
            harness
                .get("publishRecordings", &format!("recordID={id}"))
                .await
                .body,
            "<response><returncode>FAILED</returncode><messageKey>missingParamPublish</messageKey>\
             <message>You must specify a publish value true or false.</message></response>"
        );
        assert_eq!(
            harness
                .get("deleteRecordings", &format!("recordID={}", evil_id))
                .await
                .body,
            "<response><returncode>FAILED</returncode><messageKey>notFound</messageKey>\
             <message>We could not find recordings</message></response>"
        );

        // Delete removes the files.
        let deleted = harness
            .get("deleteRecordings", &format!("recordID={id}"))
            .await;
        assert_eq!(
            deleted.body,
            "<response><returncode>SUCCESS</returncode><deleted>true</deleted></response>"
        );
        assert!(!root.join(format!("published/presentation/{id}")).exists());
        assert!(!root.join(format!("published/video/{id}")).exists());
        let gone = harness
            .get("getRecordings", &format!("recordID={id}"))
            .await;
        assert_eq!(gone.message_key(), "noRecordings");
        let any = harness
            .get("getRecordings", &format!("recordID={id}&state=deleted"))
            .await;
        assert_eq!(any.field("state").as_deref(), Some("deleted"));
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_recordings() {
    let harness = recordings_harness(Db::Sqlite).await;
    let school = |call: &str, query: &str| school_url(&harness, call, query);
    add_school(&harness).await;
    let created = harness
        .get_raw(&school("create", "name=T&meetingID=school-room"))
        .await;
    created.assert_success();
    let school_id = created.field("internalMeetingID").unwrap();
    let default_id = create_run(&harness, "default-room", "").await;
    let spool = harness.state().recordings.spool_dir.clone();
    drop_in_spool(
        &spool,
        &format!("{school_id}.tar"),
        &archive(&school_id, &["presentation"], "school-room"),
    );
    drop_in_spool(
        &spool,
        &format!("{default_id}.tar"),
        &archive(&default_id, &["presentation"], "default-room"),
    );
    eventually("both imports", || async {
        harness
            .store()
            .recording(&school_id)
            .await
            .unwrap()
            .is_some()
            && harness
                .store()
                .recording(&default_id)
                .await
                .unwrap()
                .is_some()
    })
    .await;
    let theirs = harness.get_raw(&school("getRecordings", "")).await;
    assert!(theirs.body.contains(&school_id) && !theirs.body.contains(&default_id));
    let ours = harness.get("getRecordings", "").await;
    assert!(ours.body.contains(&default_id) && !ours.body.contains(&school_id));
    // Another tenant's recording cannot be changed.
    harness
        .get("deleteRecordings", &format!("recordID={school_id}"))
        .await
        .assert_failed("notFound");
    harness
        .get_raw(&school(
            "publishRecordings",
            &format!("recordID={default_id}&publish=false"),
        ))
        .await
        .assert_failed("notFound");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_recordings_play_through_one_time_links() {
    for db in BOTH {
        let harness = recordings_harness(db).await;
        let id = create_run(&harness, "room-p", "").await;
        let spool = harness.state().recordings.spool_dir.clone();
        drop_in_spool(
            &spool,
            &format!("{id}.tar"),
            &archive(&id, &["presentation"], "room-p"),
        );
        eventually("the import", || async {
            harness.store().recording(&id).await.unwrap().is_some()
        })
        .await;
        harness
            .get("updateRecordings", &format!("recordID={id}&protect=true"))
            .await
            .assert_success();
        let base = public(&harness);
        let asset = format!("{base}/presentation/{id}/data.bin");
        assert_eq!(
            harness
                .client
                .get(&asset)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            404,
            "{db:?}"
        );
        let listed = harness
            .get("getRecordings", &format!("recordID={id}"))
            .await;
        assert_eq!(listed.field("protected").as_deref(), Some("true"));
        let link = listed.field("url").unwrap();
        assert!(
            link.starts_with(&format!("{base}/recording-link/presentation/")),
            "{link}"
        );
        let redeemed = harness.client.get(&link).send().await.unwrap();
        assert_eq!(redeemed.status().as_u16(), 302, "{db:?}");
        assert_eq!(
            redeemed.headers().get("location").unwrap(),
            &format!("{base}/playback/presentation/2.3/{id}")
        );
        // Scoped to this recording's paths, never `/` (issue 15.A7).
        let paths: Vec<String> = redeemed
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| {
                let value = value.to_str().ok()?;
                Some(value.split("Path=").nth(1)?.split(';').next()?.to_owned())
            })
            .collect();
        assert!(
            paths.contains(&format!("/presentation/{id}"))
                && paths.contains(&format!("/captions/{id}"))
                && !paths.iter().any(|path| path == "/"),
            "{paths:?}"
        );
        let cookie = redeemed
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let with_cookie = harness
            .client
            .get(&asset)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(with_cookie.status().as_u16(), 200);
        assert_eq!(
            with_cookie.headers().get("cache-control").unwrap(),
            "private, no-store"
        );
        // Used once; forged and altered tokens: 404.
        assert_eq!(
            harness
                .client
                .get(&link)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        let forged = format!(
            "{base}/recording-link/presentation/{id}.99999999999.{}.{}",
            "0".repeat(32),
            "0".repeat(64)
        );
        assert_eq!(
            harness
                .client
                .get(&forged)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        // A cookie of another recording does not open this one.
        let wrong = cookie.replace(&id.replace('-', "_"), &"b".repeat(40));
        assert_eq!(
            harness
                .client
                .get(&asset)
                .header("cookie", wrong)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        harness.stop().await;
    }
}

/// A receiver that fails its first request and records the bodies.
async fn callback_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use poem::{EndpointExt, Route, handler, post, web::Data};
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<String>>>;
    #[handler]
    fn receive(body: String, Data(seen): Data<&Seen>) -> poem::Response {
        let mut seen = seen.lock().unwrap();
        seen.push(body);
        let status = if seen.len() == 1 { 500 } else { 200 };
        poem::Response::builder()
            .status(poem::http::StatusCode::from_u16(status).unwrap())
            .body("")
    }
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    let app = Route::new().at("/ready", post(receive)).data(seen.clone());
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{addr}/ready"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_ready_callback_is_kept_from_the_server_and_sent_after_import() {
    let harness = recordings_harness(Db::Postgres).await;
    let (url, seen) = callback_receiver().await;
    let id = create_run(
        &harness,
        "room-cb",
        &format!("&meta_bbb-recording-ready-url={}&meta_other=x", enc(&url)),
    )
    .await;
    let info = harness.get("getMeetingInfo", "meetingID=room-cb").await;
    info.assert_success();
    assert!(info.body.contains("<other>x</other>"), "{}", info.body);
    assert!(
        !info.body.contains("recording-ready"),
        "not forwarded: {}",
        info.body
    );
    let spool = harness.state().recordings.spool_dir.clone();
    drop_in_spool(
        &spool,
        &format!("{id}.tar"),
        &archive(&id, &["presentation"], "room-cb"),
    );
    eventually("the callback to succeed after a failure", || async {
        seen.lock().unwrap().len() >= 2
    })
    .await;
    let body = seen.lock().unwrap()[1].clone();
    let token = body.strip_prefix("signed_parameters=").unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["meeting_id"], "room-cb");
    assert_eq!(claims["record_id"], id.as_str());
    harness.stop().await;
}

/// Uploads sign the archive's SHA-256; a signature works once, within a
/// small clock skew into the future, and only with the archive it signed
/// (issue 15.A5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_upload_archives_signed_with_their_secret() {
    use sha2::Digest;
    let harness = recordings_harness(Db::Sqlite).await;
    let id = create_run(&harness, "room-up", "").await;
    let ts = switchboard_recordings::protected::unix_now();
    let digest_of = |bytes: &[u8]| hex::encode(sha2::Sha256::digest(bytes));
    let upload = |secret: &str, ts: u64, digest: Option<&str>| {
        let signature =
            switchboard_api::recordings::upload::sign(secret, "127.0.0.1", &id, ts, digest);
        let digest = digest.map(|d| format!("&sha256={d}")).unwrap_or_default();
        format!(
            "{}/recordings/upload?server=127.0.0.1&recordID={id}&ts={ts}{digest}&signature={signature}",
            public(&harness)
        )
    };
    let post = |url: String, body: Vec<u8>| {
        let client = harness.client.clone();
        async move { client.post(url).body(body).send().await.unwrap() }
    };
    let body = archive(&id, &["presentation"], "room-up");
    let digest = digest_of(&body);
    let secret = harness.sims[0].secret().to_owned();
    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(
        status(post(upload("wrong-secret", ts, Some(&digest)), body.clone()).await),
        401
    );
    assert_eq!(
        status(post(upload(&secret, ts - 3600, Some(&digest)), body.clone()).await),
        401,
        "stale"
    );
    assert_eq!(
        status(post(upload(&secret, ts + 120, Some(&digest)), body.clone()).await),
        401,
        "two minutes in the future"
    );
    // A captured URL does not carry another archive.
    let other = archive(&id, &["presentation", "video"], "room-up");
    let captured = upload(&secret, ts, Some(&digest));
    assert_eq!(status(post(captured.clone(), other).await), 401);
    assert!(harness.store().recording(&id).await.unwrap().is_none());
    // A fresh signature with the archive's digest is accepted once.
    let fresh = upload(&secret, ts - 1, Some(&digest));
    let accepted = post(fresh.clone(), body.clone()).await;
    assert_eq!(accepted.status().as_u16(), 200);
    let summary: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(summary["created"], true);
    assert!(harness.store().recording(&id).await.unwrap().is_some());
    assert_eq!(status(post(fresh, body.clone()).await), 401, "replayed");
    let junk = b"not a tar".to_vec();
    let bad = post(upload(&secret, ts - 2, Some(&digest_of(&junk))), junk).await;
    assert_eq!(bad.status().as_u16(), 422);
    // The outdated form (no digest) still works, once.
    let outdated = upload(&secret, ts - 3, None);
    assert_eq!(status(post(outdated.clone(), body.clone()).await), 200);
    assert_eq!(status(post(outdated, body).await), 401, "replayed");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_tracks_are_uploaded_listed_and_served() {
    let harness = recordings_harness(Db::Sqlite).await;
    let id = create_run(&harness, "room-tt", "").await;
    let spool = harness.state().recordings.spool_dir.clone();
    drop_in_spool(
        &spool,
        &format!("{id}.tar"),
        &archive(&id, &["presentation"], "room-tt"),
    );
    eventually("the import", || async {
        harness.store().recording(&id).await.unwrap().is_some()
    })
    .await;
    let empty = harness
        .get_raw(&harness.url("getRecordingTextTracks", &format!("recordID={id}")))
        .await;
    assert_eq!(
        empty.body,
        r#"{"response":{"returncode":"SUCCESS","tracks":[]}}"#
    );
    let boundary = "XBOUNDARYX";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"en.srt\"\r\nContent-Type: text/plain\r\n\r\n1\n00:00:01,000 --> 00:00:02,000\nHello\n\r\n--{boundary}--\r\n"
    );
    let put = harness
        .post(
            harness.url(
                "putRecordingTextTrack",
                &format!("recordID={id}&kind=subtitles&lang=en-US&label=English"),
            ),
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await;
    assert_eq!(
        put.body,
        format!(
            r#"{{"response":{{"message":"Text track uploaded successfully","messageKey":"upload_text_track_success","recordId":"{id}","returncode":"SUCCESS"}}}}"#
        )
    );
    let listed = harness
        .get_raw(&harness.url("getRecordingTextTracks", &format!("recordID={id}")))
        .await;
    let href = format!("{}/captions/{id}/subtitles_en-US.vtt", public(&harness));
    assert_eq!(
        listed.body,
        format!(
            r#"{{"response":{{"returncode":"SUCCESS","tracks":[{{"href":"{href}","kind":"subtitles","label":"English","lang":"en-US","source":"upload"}}]}}}}"#
        )
    );
    let vtt = harness
        .client
        .get(&href)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        vtt.starts_with("WEBVTT") && vtt.contains("00:00:01.000 --> 00:00:02.000"),
        "{vtt}"
    );
    let missing = harness
        .get_raw(&harness.url("getRecordingTextTracks", "recordID=nope"))
        .await;
    assert!(missing.body.contains("noRecordings"), "{}", missing.body);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_published_tree_is_imported_once() {
    let harness = recordings_harness(Db::Sqlite).await;
    let id = create_run(&harness, "room-old", "").await;
    let tree = tempfile::tempdir().unwrap();
    let unpacked = archive(&id, &["presentation", "video"], "room-old");
    tar::Archive::new(unpacked.as_slice())
        .unpack(tree.path())
        .unwrap();
    std::fs::create_dir_all(tree.path().join("presentation/not-a-recording")).unwrap();
    let service = &harness.state().recordings;
    let report = switchboard_app::recordings::import::import_tree(service, tree.path())
        .await
        .unwrap();
    assert_eq!((report.imported, report.unchanged), (1, 0), "{report:?}");
    let root = service.settings.dir.as_path();
    assert!(
        root.join(format!("published/video/{id}/data.bin"))
            .is_file()
    );
    assert!(
        tree.path().join(format!("video/{id}/data.bin")).is_file(),
        "copied, not moved"
    );
    let again = switchboard_app::recordings::import::import_tree(service, tree.path())
        .await
        .unwrap();
    assert_eq!((again.imported, again.unchanged), (0, 1));
    let listed = harness.get("getRecordings", "meetingID=room-old").await;
    assert_eq!(
        listed.body.matches("<format>").count(),
        2,
        "{}",
        listed.body
    );
    harness.stop().await;
}

/// Issue 14.9: the recording of a breakout room BBB opened from a tenant's
/// meeting (`<breakout parentMeetingId=..>` in its metadata.xml) is that
/// tenant's, not the default tenant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakout_recording_belongs_to_its_parents_tenant() {
    for db in BOTH {
        let harness = recordings_harness(db).await;
        let school = |call: &str, query: &str| school_url(&harness, call, query);
        add_school(&harness).await;
        let created = harness
            .get_raw(&school("create", "name=T&meetingID=school-class"))
            .await;
        created.assert_success();
        let parent = created.field("internalMeetingID").unwrap();
        let breakout = switchboard_domain::ids::MeetingId::parse("school-class-room-1")
            .unwrap()
            .internal_id(1_741_369_843_904);
        let bytes = archive_with(&breakout, &["presentation"], |format| {
            metadata_xml(&breakout, format, "school-class-room-1").replace(
                r#"breakout="false"/>"#,
                &format!(
                    r#"breakout="true"/><breakout parentMeetingId="{parent}" sequence="1" meetingId="{breakout}"/>"#
                ),
            )
        });
        let spool = harness.state().recordings.spool_dir.clone();
        drop_in_spool(&spool, &format!("{breakout}.tar"), &bytes);
        eventually("the import", || async {
            harness
                .store()
                .recording(&breakout)
                .await
                .unwrap()
                .is_some()
        })
        .await;
        // The parent's own recording names its rooms.
        let parent_bytes = archive_with(&parent, &["presentation"], |format| {
            metadata_xml(&parent, format, "school-class").replace(
                r#"breakout="false"/>"#,
                &format!(
                    r#"breakout="false"/><breakoutRooms><breakoutRoom>{breakout}</breakoutRoom></breakoutRooms>"#
                ),
            )
        });
        drop_in_spool(&spool, &format!("{parent}.tar"), &parent_bytes);
        eventually("the parent's import", || async {
            harness.store().recording(&parent).await.unwrap().is_some()
        })
        .await;
        let theirs = harness.get_raw(&school("getRecordings", "")).await;
        assert!(theirs.body.contains(&breakout), "{db:?}: {}", theirs.body);
        // Listed as BBB lists them: after the metadata, before the playback.
        assert!(
            theirs.body.contains(&format!(
                "</metadata><breakout><parentId>{parent}</parentId><sequence>1</sequence></breakout><playback>"
            )),
            "{db:?}: {}",
            theirs.body
        );
        assert!(
            theirs.body.contains(&format!(
                "</metadata><breakoutRooms><breakoutRoom>{breakout}</breakoutRoom></breakoutRooms><playback>"
            )),
            "{db:?}: {}",
            theirs.body
        );
        theirs.assert_xml();
        let default = harness.get("getRecordings", "").await;
        assert!(
            !default.body.contains(&breakout),
            "{db:?}: {}",
            default.body
        );
        harness.stop().await;
    }
}

/// Issue 15.A2: playback links and preview images from metadata.xml are
/// handed out only as http(s) URLs on Switchboard's public URL: a
/// `javascript:` link never reaches getRecordings' `<url>`, and a protected
/// link never redirects off-site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_playback_links_never_leave_switchboard() {
    let harness = recordings_harness(Db::Sqlite).await;
    let id = create_run(&harness, "room-x", "").await;
    let spool = harness.state().recordings.spool_dir.clone();
    let hostile = |format: &str| {
        let link = match format {
            "presentation" => "javascript:alert(document.cookie)",
            _ => "https:\\\\evil.example/x",
        };
        metadata_xml(&id, format, "room-x")
            .replace(
                &format!("https://bbb1.example.org/playback/{format}/2.3/{id}"),
                link,
            )
            .replace(
                &format!(
                    "https://bbb1.example.org/{format}/{id}/presentation/p1/thumbnails/thumb-1.png"
                ),
                "javascript:alert(2)",
            )
    };
    drop_in_spool(
        &spool,
        &format!("{id}.tar"),
        &archive_with(&id, &["presentation", "video"], hostile),
    );
    eventually("the import", || async {
        harness.store().recording(&id).await.unwrap().is_some()
    })
    .await;
    let base = public(&harness);
    let listed = harness
        .get("getRecordings", &format!("recordID={id}"))
        .await;
    listed.assert_success();
    assert!(!listed.body.contains("javascript"), "{}", listed.body);
    assert!(!listed.body.contains("evil.example"), "{}", listed.body);
    assert!(
        listed
            .body
            .contains(&format!("<url>{base}/playback/presentation/2.3/{id}</url>")),
        "{}",
        listed.body
    );
    harness
        .get("updateRecordings", &format!("recordID={id}&protect=true"))
        .await
        .assert_success();
    let listed = harness
        .get("getRecordings", &format!("recordID={id}"))
        .await;
    let link = listed
        .body
        .split("<url>")
        .filter_map(|part| part.split("</url>").next())
        .find(|url| url.contains("/recording-link/video/"))
        .expect("a one-time link for the video format")
        .replace("&amp;", "&");
    let redeemed = harness.client.get(&link).send().await.unwrap();
    assert_eq!(redeemed.status().as_u16(), 302);
    let location = redeemed
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        location.starts_with(&format!("{base}/")),
        "redirected on-site only: {location}"
    );
    harness.stop().await;
}

/// The post-publish hook BBB servers run (`ops/bbb/switchboard-post-publish.sh`)
/// signs an upload Switchboard accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_publish_hook_uploads_a_published_recording() {
    let harness = recordings_harness(Db::Sqlite).await;
    let id = create_run(&harness, "room-hook", "").await;
    let published = tempfile::tempdir().unwrap();
    let format_dir = published.path().join("presentation").join(&id);
    std::fs::create_dir_all(&format_dir).unwrap();
    std::fs::write(
        format_dir.join("metadata.xml"),
        metadata_xml(&id, "presentation", "room-hook"),
    )
    .unwrap();
    std::fs::write(format_dir.join("data.bin"), vec![7u8; 1000]).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ops/bbb/switchboard-post-publish.sh"
    );
    let output = tokio::process::Command::new("bash")
        .arg(script)
        .arg(&id)
        .env("PUBLISHED_DIR", published.path())
        .env("SWITCHBOARD_URL", public(&harness))
        .env("SWITCHBOARD_SERVER", "127.0.0.1")
        .env("SWITCHBOARD_SERVER_SECRET", harness.sims[0].secret())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(harness.store().recording(&id).await.unwrap().is_some());
    harness.stop().await;
}

/// Issue 15.A8: a callback URL on a loopback (private, link-local,
/// metadata) address is never called unless the operator allows the range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_private_addresses_are_refused_by_default() {
    let harness = Harness::with_tags(Db::Sqlite, &[None], |settings| {
        settings.recordings.spool_settle_secs = 0.0;
        settings.recordings.rescan_interval_secs = 0.2;
        settings.recordings.retry_base_ms = 20;
        settings.outbound_allow.clear();
    })
    .await;
    let (url, seen) = callback_receiver().await;
    let by_name = url.replace("127.0.0.1", "localhost");
    for (meeting, target) in [("room-ip", &url), ("room-name", &by_name)] {
        let id = create_run(
            &harness,
            meeting,
            &format!("&meta_bbb-recording-ready-url={}", enc(target)),
        )
        .await;
        let spool = harness.state().recordings.spool_dir.clone();
        drop_in_spool(
            &spool,
            &format!("{id}.tar"),
            &archive(&id, &["presentation"], meeting),
        );
        eventually("the import", || async {
            harness.store().recording(&id).await.unwrap().is_some()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "no request reached the loopback receiver"
    );
    harness.stop().await;
}

/// Issue 15.A1: with tenants, the recording of a run Switchboard does not
/// know is kept but handed to no tenant (not the default one); without
/// tenants it stays the default tenant's (a migrated tree keeps working).
/// The archive's metadata never overrides a known run's meetingID (15.A7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_of_unknown_runs_belong_to_no_tenant_while_tenants_exist() {
    for with_tenants in [false, true] {
        let harness = recordings_harness(Db::Sqlite).await;
        if with_tenants {
            add_school(&harness).await;
        }
        let stranger = format!("{}-1741369843904", "c".repeat(40));
        let known = create_run(&harness, "room-known", "").await;
        let spool = harness.state().recordings.spool_dir.clone();
        drop_in_spool(
            &spool,
            &format!("{stranger}.tar"),
            &archive(&stranger, &["presentation"], "stranger-room"),
        );
        drop_in_spool(
            &spool,
            &format!("{known}.tar"),
            &archive(&known, &["presentation"], "someone-elses-room"),
        );
        eventually("both imports", || async {
            harness
                .store()
                .recording(&stranger)
                .await
                .unwrap()
                .is_some()
                && harness.store().recording(&known).await.unwrap().is_some()
        })
        .await;
        let ours = harness.get("getRecordings", "").await;
        assert_eq!(
            ours.body.contains(&stranger),
            !with_tenants,
            "with_tenants={with_tenants}: {}",
            ours.body
        );
        assert!(
            ours.body.contains("<meetingID>room-known</meetingID>")
                && !ours.body.contains("someone-elses-room"),
            "the run's meetingID: {}",
            ours.body
        );
        if with_tenants {
            let theirs = harness
                .get_raw(&school_url(&harness, "getRecordings", ""))
                .await;
            assert!(!theirs.body.contains(&stranger), "{}", theirs.body);
        }
        harness.stop().await;
    }
}

/// Issue 15.A7: a one-time link is used up only when it admits: a link to a
/// format that is not (yet) there answers 404 and still works later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_link_is_not_used_up_by_a_refusal() {
    let harness = recordings_harness(Db::Sqlite).await;
    let id = create_run(&harness, "room-late", "").await;
    let spool = harness.state().recordings.spool_dir.clone();
    drop_in_spool(
        &spool,
        &format!("{id}.tar"),
        &archive(&id, &["presentation"], "room-late"),
    );
    eventually("the import", || async {
        harness.store().recording(&id).await.unwrap().is_some()
    })
    .await;
    harness
        .get("updateRecordings", &format!("recordID={id}&protect=true"))
        .await
        .assert_success();
    let record_id = switchboard_domain::recording_ids::RecordId::parse(&id).unwrap();
    let link = harness
        .state()
        .recordings
        .protected_link(&record_id, "video");
    let status = |link: String| {
        let client = harness.client.clone();
        async move { client.get(link).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(link.clone()).await, 404, "no video format yet");
    drop_in_spool(
        &spool,
        &format!("{id}.tar"),
        &archive(&id, &["presentation", "video"], "room-late"),
    );
    eventually("the video format", || async {
        harness
            .store()
            .recording(&id)
            .await
            .unwrap()
            .is_some_and(|r| r.formats.iter().any(|f| f.format == "video"))
    })
    .await;
    assert_eq!(status(link.clone()).await, 302, "the link still works");
    assert_eq!(status(link).await, 404, "once");
    harness.stop().await;
}

/// Issue 15.A7: publish and unpublish record first, then move files; a
/// tree left behind the log (a failed move, a crash in between) is moved
/// to what the log says by the reconciliation run at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_is_reconciled_with_the_recorded_state() {
    let harness = recordings_harness(Db::Sqlite).await;
    let id = create_run(&harness, "room-tree", "").await;
    let spool = harness.state().recordings.spool_dir.clone();
    drop_in_spool(
        &spool,
        &format!("{id}.tar"),
        &archive(&id, &["presentation"], "room-tree"),
    );
    eventually("the import", || async {
        harness.store().recording(&id).await.unwrap().is_some()
    })
    .await;
    let root = harness.state().recordings.settings.dir.clone();
    let published = root.join("published/presentation").join(&id);
    let unpublished = root.join("unpublished/presentation").join(&id);
    assert!(published.is_dir());
    // The log says published; the files were left unpublished.
    std::fs::create_dir_all(unpublished.parent().unwrap()).unwrap();
    std::fs::rename(&published, &unpublished).unwrap();
    let asset = format!("{}/presentation/{id}/data.bin", public(&harness));
    let status = || {
        let client = harness.client.clone();
        let asset = asset.clone();
        async move { client.get(asset).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status().await, 404);
    let moved =
        switchboard_app::recordings::import::reconcile_tree(&harness.state().recordings).await;
    assert_eq!(moved, 1);
    assert!(published.is_dir() && !unpublished.exists());
    assert_eq!(status().await, 200);
    // Unpublishing records, then moves.
    harness
        .get("publishRecordings", &format!("recordID={id}&publish=false"))
        .await
        .assert_success();
    assert!(unpublished.is_dir() && !published.exists());
    assert_eq!(
        switchboard_app::recordings::import::reconcile_tree(&harness.state().recordings).await,
        0
    );
    harness.stop().await;
}
