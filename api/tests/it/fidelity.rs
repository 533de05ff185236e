//! BBB fidelity found by black-box testing (issue 14): each test failed
//! before its fix.

use crate::support::{BOTH, Harness, SECRET, signed_url};
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;

/// Issue 14.4: BBB accepts POST on its API calls (join excepted), with the
/// parameters in the signed query, in a form body, or both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_bbb_accepts_by_post_are_answered_by_post() {
    for db in BOTH {
        let harness = Harness::start(db, 2).await;
        harness.create("posted").await.assert_success();
        let post = |call: &str, query: &str, form: &str| {
            let url = harness.url(call, query);
            let form = form.to_owned();
            let harness = &harness;
            async move {
                harness
                    .post(url, "application/x-www-form-urlencoded", form)
                    .await
            }
        };
        // Parameters in the signed query, empty form body.
        let get = harness.get("isMeetingRunning", "meetingID=posted").await;
        let running = post("isMeetingRunning", "meetingID=posted", "").await;
        running.assert_success();
        assert_eq!(
            running.field("running"),
            get.field("running"),
            "{db:?}: as by GET"
        );
        let info = post("getMeetingInfo", "meetingID=posted", "").await;
        info.assert_success();
        assert_eq!(info.field("meetingID").as_deref(), Some("posted"), "{db:?}");
        post("getMeetings", "", "").await.assert_success();
        // Parameters in the form body, the URL signing the empty query.
        let body_only = harness
            .post(
                signed_url(
                    &harness.app.api_url(),
                    "getMeetingInfo",
                    "",
                    SECRET,
                    ChecksumAlgorithm::Sha1,
                ),
                "application/x-www-form-urlencoded",
                "meetingID=posted",
            )
            .await;
        body_only.assert_success();
        assert_eq!(
            body_only.field("meetingID").as_deref(),
            Some("posted"),
            "{db:?}: the form's meetingID reaches the server"
        );
        for call in ["publishRecordings", "deleteRecordings"] {
            let reply = post(call, "recordID=none-such", "").await;
            assert_ne!(reply.message_key(), "unsupportedRequest", "{db:?}: {call}");
        }
        let ended = post("end", "meetingID=posted", "").await;
        ended.assert_success();
        assert!(
            harness.sim_with("posted").is_none(),
            "{db:?}: ended by POST"
        );
        // join stays GET-only (BBB 3.0).
        post("join", "meetingID=posted&fullName=A&role=VIEWER", "")
            .await
            .assert_failed("unsupportedRequest");
        harness.stop().await;
    }
}

/// Parses a whole XML document strictly; panics with the reason when it is
/// not well-formed.
fn assert_well_formed(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Text(text)) => {
                let text = text.xml10_content().into_owned();
                assert!(
                    !text
                        .chars()
                        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')),
                    "a character XML 1.0 cannot carry: {xml:?}"
                );
            }
            Ok(_) => {}
            Err(err) => panic!("not well-formed ({err}): {xml:?}"),
        }
    }
}

/// Issue 14.3: control characters in a meetingID (or name) never reach the
/// XML Switchboard writes; as BBB does, they are stripped from the meetingID,
/// so every call finds the meeting by the cleaned id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_a_meeting_id_never_break_the_xml() {
    for db in BOTH {
        let harness = Harness::start(db, 2).await;
        let created = harness
            .get("create", "name=Na%01me%00&meetingID=ctl%00x%01y%0B")
            .await;
        created.assert_success();
        assert_well_formed(&created.body);
        let listed = harness.get("getMeetings", "").await;
        listed.assert_success();
        assert_well_formed(&listed.body);
        assert!(
            listed.body.contains("<meetingID>ctlxy</meetingID>"),
            "{db:?}: listed under the cleaned id: {}",
            listed.body
        );
        let info = harness.get("getMeetingInfo", "meetingID=ctlxy").await;
        info.assert_success();
        assert_well_formed(&info.body);
        harness
            .get("getMeetingInfo", "meetingID=ctl%00x%01y")
            .await
            .assert_success();
        harness.stop().await;
    }
}

/// Issue 14.1: one completed poll after a meeting is gone from its server,
/// every read agrees it ended, with the default settings, for meetings the
/// last poll saw and for meetings created after it, with attendees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_gone_from_its_server_has_ended_everywhere_after_one_poll() {
    use std::time::Duration;
    use switchboard_api::admin::model::MeetingState;
    let interval = Duration::from_millis(500);
    for db in BOTH {
        let harness = Harness::polled_with(db, 3, |settings| {
            settings.health.interval_secs = interval.as_secs_f64();
        })
        .await;
        for id in ["seen-a", "seen-b", "seen-c"] {
            harness.create(id).await.assert_success();
        }
        for n in 0..80 {
            let join = harness
                .get(
                    "join",
                    &format!("meetingID=seen-a&fullName=U{n}&role=VIEWER"),
                )
                .await;
            let location = join.location.clone().expect("a redirect");
            harness.client.get(location).send().await.unwrap();
        }
        tokio::time::sleep(interval + interval / 2).await;
        for id in ["late-d", "late-e"] {
            harness.create(id).await.assert_success();
        }
        let all = ["seen-a", "seen-b", "seen-c", "late-d", "late-e"];
        for id in all {
            let on = harness.sim_with(id).expect("runs on a server");
            assert!(harness.sims[on].end_meeting_directly(id));
        }
        tokio::time::sleep(interval * 2 + interval / 2).await;

        let listed = harness.get("getMeetings", "").await;
        assert_eq!(
            listed.message_key(),
            "noMeetings",
            "{db:?}: {}",
            listed.body
        );
        for id in all {
            let running = harness
                .get("isMeetingRunning", &format!("meetingID={id}"))
                .await;
            assert_eq!(
                running.field("running").as_deref(),
                Some("false"),
                "{db:?}: {id}"
            );
            harness
                .get("getMeetingInfo", &format!("meetingID={id}"))
                .await
                .assert_failed("notFound");
        }
        let admin = &harness.state().admin;
        let running = admin
            .meetings(None, Some(MeetingState::Running), None)
            .await
            .unwrap();
        assert!(running.is_empty(), "{db:?}: still running: {running:?}");
        let principal = switchboard_app::admin::Principal::admin("ops".into());
        for id in &harness.servers {
            admin
                .remove(&id.to_string(), false, &principal)
                .await
                .unwrap_or_else(|err| panic!("{db:?}: remove {id}: {err}"));
        }
        harness.stop().await;
    }
}

/// Issue 14.8: a connection stalled half-way through its request is closed
/// after the idle timeout instead of being held forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_closed_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let harness = Harness::with_tags(crate::support::Db::Sqlite, &[None], |settings| {
        settings.idle_timeout_secs = 0.5;
    })
    .await;
    let mut socket = tokio::net::TcpStream::connect(harness.app.addr)
        .await
        .unwrap();
    socket
        .write_all(b"GET /bigbluebutton/api/getMeetings?checksum=")
        .await
        .unwrap();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(std::time::Duration::from_secs(3), socket.read(&mut buffer))
        .await
        .expect("closed within the idle timeout, not held open");
    assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
    harness.stop().await;
}

/// Issue 14.6: raw bytes that are not UTF-8 (nor allowed in a URI) in the
/// request line get an HTTP answer, never a dropped connection. (This held
/// already in this build: hyper answers 400; kept as the guard.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_non_utf8_bytes_in_the_request_line_get_an_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let harness = Harness::start(crate::support::Db::Sqlite, 1).await;
    let mut socket = tokio::net::TcpStream::connect(harness.app.addr)
        .await
        .unwrap();
    socket
        .write_all(b"GET /bigbluebutton/api/create?name=\xff\xfe&meetingID=x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        socket.read_to_end(&mut answer),
    )
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 400 "),
        "a plain 400, not a dropped connection: {text:?}"
    );
    harness.stop().await;
}

/// Issue 14.8: at most `max_connections` client connections are served at
/// once; a further one waits until one closes (here: by the idle timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_until_one_closes() {
    use tokio::io::AsyncWriteExt;
    let harness = Harness::with_tags(crate::support::Db::Sqlite, &[None], |settings| {
        settings.idle_timeout_secs = 1.0;
        settings.max_connections = 2;
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut socket = tokio::net::TcpStream::connect(harness.app.addr)
            .await
            .unwrap();
        socket.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        stalled.push(socket);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let health = reqwest::get(format!("http://{}/health", harness.app.addr))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(600),
        "served only once a stalled connection was closed: {waited:?}"
    );
    drop(stalled);
    harness.stop().await;
}

/// Issue 14.7: a body far over the request limit gets an answer the client
/// can read (BBB XML), whether its length is declared or it is chunked: a
/// client that sends its whole body before reading (as curl and Python's
/// requests do) reads the answer instead of a connection reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_an_answer_the_client_reads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let harness = Harness::start(crate::support::Db::Sqlite, 1).await;
    let url = harness.url("create", "meetingID=big&name=big");
    let target = &url[url.find("/bigbluebutton").unwrap()..];
    let body = format!("meta_x={}", "a".repeat(10 * 1024 * 1024));
    for chunked in [false, true] {
        let mut socket = tokio::net::TcpStream::connect(harness.app.addr)
            .await
            .unwrap();
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_owned()
        } else {
            format!("Content-Length: {}", body.len())
        };
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        for chunk in body.as_bytes().chunks(64 * 1024) {
            if chunked {
                let size = format!("{:x}\r\n", chunk.len());
                socket
                    .write_all(size.as_bytes())
                    .await
                    .unwrap_or_else(|error| {
                        panic!("chunked={chunked}: reset while sending: {error}")
                    });
            }
            socket
                .write_all(chunk)
                .await
                .unwrap_or_else(|error| panic!("chunked={chunked}: reset while sending: {error}"));
            if chunked {
                socket.write_all(b"\r\n").await.unwrap();
            }
        }
        if chunked {
            socket.write_all(b"0\r\n\r\n").await.unwrap();
        }
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            socket.read_to_end(&mut answer),
        )
        .await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            matches!(read, Ok(Ok(_))) || !answer.is_empty(),
            "chunked={chunked}: the answer is read: {read:?}"
        );
        assert!(
            text.contains("<returncode>FAILED</returncode>"),
            "chunked={chunked}: BBB XML: {text}"
        );
    }
    assert!(harness.sim_with("big").is_none(), "nothing created");
    harness.stop().await;
}
