//! The simulator over real HTTP, driven with reqwest.

use std::time::{Duration, Instant};

use bbb_simulator::{FailureMode, Simulator, SimulatorConfig};
use quick_xml::Reader;
use quick_xml::events::Event;
use reqwest::StatusCode;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};
use switchboard_domain::bbb::params::Params;

/// A client that does not follow redirects.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start() -> Simulator {
    Simulator::start(SimulatorConfig::default()).await.unwrap()
}

/// Encodes pairs as a query string.
fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<Params>()
        .to_query()
}

/// `{url}api/{call}?{query}&checksum=...` signed with `algorithm`.
fn signed_with(sim: &Simulator, algorithm: ChecksumAlgorithm, call: &str, query: &str) -> String {
    let checksum = sign(algorithm, call, query, sim.secret());
    if query.is_empty() {
        format!("{}api/{call}?checksum={checksum}", sim.url())
    } else {
        format!("{}api/{call}?{query}&checksum={checksum}", sim.url())
    }
}

/// A sha1-signed API URL.
fn signed(sim: &Simulator, call: &str, pairs: &[(&str, &str)]) -> String {
    signed_with(sim, ChecksumAlgorithm::Sha1, call, &query(pairs))
}

/// GETs a URL, checks the API conventions (200, text/xml, well-formed, no
/// declaration) and returns the body.
async fn get_xml(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.unwrap();
    check_xml(response).await
}

async fn check_xml(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/xml"
    );
    let body = response.text().await.unwrap();
    assert!(!body.starts_with("<?xml"), "{body}");
    assert_well_formed(&body);
    body
}

/// Parses the whole document with quick-xml.
fn assert_well_formed(body: &str) {
    let mut reader = Reader::from_str(body);
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => depth += 1,
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(err) => panic!("not XML ({err}): {body}"),
        }
    }
    assert_eq!(depth, 0, "{body}");
}

/// The unescaped text of the first `<tag>` element.
fn tag(body: &str, name: &str) -> Option<String> {
    let mut reader = Reader::from_str(body);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(start) if start.name().as_ref() == name => inside = true,
            Event::Empty(empty) if empty.name().as_ref() == name => {
                return Some(String::new());
            }
            Event::Text(t) if inside => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) if inside => {
                let entity = r.into_inner();
                text.push_str(match entity.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other}"),
                });
            }
            Event::End(end) if inside && end.name().as_ref() == name => {
                return Some(text);
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

fn returncode(body: &str) -> String {
    tag(body, "returncode").unwrap()
}

fn message_key(body: &str) -> String {
    tag(body, "messageKey").unwrap_or_default()
}

#[tokio::test]
async fn index_answers_without_checksum() {
    let sim = start().await;
    let client = client();
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    assert!(sim.url().ends_with("/bigbluebutton/"));
    for path in ["api", "api/"] {
        let body = get_xml(&client, &format!("{}{path}", sim.url())).await;
        assert_eq!(returncode(&body), "SUCCESS");
        assert_eq!(tag(&body, "version").unwrap(), "2.0");
        assert_eq!(tag(&body, "apiVersion").unwrap(), "2.0");
        assert_eq!(tag(&body, "bbbVersion").unwrap(), "3.0.0");
    }
}

#[tokio::test]
async fn create_join_list_and_end() {
    let sim = start().await;
    let client = client();

    let body = get_xml(
        &client,
        &signed(
            &sim,
            "create",
            &[("meetingID", "room-1"), ("name", "Room 1")],
        ),
    )
    .await;
    assert_eq!(returncode(&body), "SUCCESS", "{body}");
    assert_eq!(tag(&body, "meetingID").unwrap(), "room-1");
    assert_eq!(tag(&body, "parentMeetingID").unwrap(), "bbb-none");
    assert_eq!(tag(&body, "dialNumber").unwrap(), "613-555-1234");
    assert_eq!(tag(&body, "hasUserJoined").unwrap(), "false");
    assert_eq!(tag(&body, "duration").unwrap(), "0");
    assert_eq!(tag(&body, "hasBeenForciblyEnded").unwrap(), "false");
    assert_eq!(message_key(&body), "");
    let create_time = tag(&body, "createTime").unwrap();
    let internal = tag(&body, "internalMeetingID").unwrap();
    let (sha, time) = internal.split_once('-').unwrap();
    assert_eq!(sha.len(), 40);
    assert_eq!(time, create_time);
    let attendee_pw = tag(&body, "attendeePW").unwrap();
    let moderator_pw = tag(&body, "moderatorPW").unwrap();
    assert_eq!(attendee_pw.len(), 8);
    assert_eq!(moderator_pw.len(), 8);
    assert_ne!(attendee_pw, moderator_pw);
    let voice_bridge = tag(&body, "voiceBridge").unwrap();
    assert_eq!(voice_bridge.len(), 5);
    assert!(voice_bridge.chars().all(|c| c.is_ascii_digit()));
    assert!(tag(&body, "createDate").unwrap().contains(" UTC "));
    assert_eq!(sim.meeting_count(), 1);
    assert_eq!(sim.attendee_count("room-1"), Some(0));

    let running = get_xml(
        &client,
        &signed(&sim, "isMeetingRunning", &[("meetingID", "room-1")]),
    )
    .await;
    assert_eq!(tag(&running, "running").unwrap(), "false");

    let response = client
        .get(signed(
            &sim,
            "join",
            &[
                ("meetingID", "room-1"),
                ("fullName", "Ada"),
                ("role", "moderator"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let prefix = format!("http://{}/html5client/join?sessionToken=", sim.addr());
    assert!(location.starts_with(&prefix), "{location}");
    assert_eq!(sim.attendee_count("room-1"), Some(1));

    // Following the redirect works.
    let page = client.get(&location).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<html"));

    let running = get_xml(
        &client,
        &signed(&sim, "isMeetingRunning", &[("meetingID", "room-1")]),
    )
    .await;
    assert_eq!(tag(&running, "running").unwrap(), "true");

    let list = get_xml(&client, &signed(&sim, "getMeetings", &[])).await;
    assert_eq!(returncode(&list), "SUCCESS");
    assert_eq!(tag(&list, "meetingID").unwrap(), "room-1");
    assert_eq!(tag(&list, "meetingName").unwrap(), "Room 1");
    assert_eq!(tag(&list, "internalMeetingID").unwrap(), internal);
    assert_eq!(tag(&list, "participantCount").unwrap(), "1");
    assert_eq!(tag(&list, "moderatorCount").unwrap(), "1");
    assert_eq!(tag(&list, "running").unwrap(), "true");
    assert_eq!(tag(&list, "fullName").unwrap(), "Ada");
    assert_eq!(tag(&list, "role").unwrap(), "MODERATOR");
    assert_eq!(tag(&list, "attendeePW").unwrap(), attendee_pw);
    assert_eq!(tag(&list, "moderatorPW").unwrap(), moderator_pw);
    assert!(list.contains("<meetings><meeting>"), "{list}");

    let end = get_xml(&client, &signed(&sim, "end", &[("meetingID", "room-1")])).await;
    assert_eq!(returncode(&end), "SUCCESS");
    assert_eq!(message_key(&end), "sentEndMeetingRequest");
    assert_eq!(
        tag(&end, "message").unwrap(),
        "A request to end the meeting was sent.  Please wait a few seconds, and then use the \
         getMeetingInfo or isMeetingRunning API calls to verify that it was ended."
    );
    assert_eq!(sim.meeting_count(), 0);
    assert_eq!(sim.attendee_count("room-1"), None);

    let again = get_xml(&client, &signed(&sim, "end", &[("meetingID", "room-1")])).await;
    assert_eq!(returncode(&again), "FAILED");
    assert_eq!(message_key(&again), "notFound");
    assert_eq!(
        tag(&again, "message").unwrap(),
        "We could not find a meeting with that meeting ID - perhaps the meeting is not yet running?"
    );

    let empty = get_xml(&client, &signed(&sim, "getMeetings", &[])).await;
    assert_eq!(returncode(&empty), "SUCCESS");
    assert!(empty.contains("<meetings/>"), "{empty}");
    assert_eq!(message_key(&empty), "noMeetings");
    assert_eq!(
        tag(&empty, "message").unwrap(),
        "no meetings were found on this server"
    );

    assert_eq!(sim.request_count("create"), 1);
    assert_eq!(sim.request_count("join"), 1);
    assert_eq!(sim.request_count("getMeetings"), 2);
    assert_eq!(sim.request_count("end"), 2);
}

#[tokio::test]
async fn duplicate_create_and_password_mismatch() {
    let sim = start().await;
    let client = client();
    let pairs = [
        ("meetingID", "dup"),
        ("name", "Dup"),
        ("attendeePW", "ap"),
        ("moderatorPW", "mp"),
    ];
    let first = get_xml(&client, &signed(&sim, "create", &pairs)).await;
    assert_eq!(returncode(&first), "SUCCESS");
    assert_eq!(tag(&first, "attendeePW").unwrap(), "ap");

    let second = get_xml(&client, &signed(&sim, "create", &pairs)).await;
    assert_eq!(returncode(&second), "SUCCESS");
    assert_eq!(message_key(&second), "duplicateWarning");
    assert_eq!(
        tag(&second, "message").unwrap(),
        "This conference was already in existence and may currently be in progress."
    );
    assert_eq!(
        tag(&second, "internalMeetingID"),
        tag(&first, "internalMeetingID")
    );

    let without_pw = get_xml(
        &client,
        &signed(&sim, "create", &[("meetingID", "dup"), ("name", "Dup")]),
    )
    .await;
    assert_eq!(message_key(&without_pw), "duplicateWarning");

    let mismatch = get_xml(
        &client,
        &signed(
            &sim,
            "create",
            &[
                ("meetingID", "dup"),
                ("name", "Dup"),
                ("moderatorPW", "other"),
            ],
        ),
    )
    .await;
    assert_eq!(returncode(&mismatch), "FAILED");
    assert_eq!(message_key(&mismatch), "idNotUnique");
    assert_eq!(
        tag(&mismatch, "message").unwrap(),
        "A meeting already exists with that meeting ID.  Please use a different meeting ID."
    );
    assert_eq!(sim.meeting_count(), 1);
}

#[tokio::test]
async fn create_validates_parameters() {
    let sim = start().await;
    let client = client();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("name", "x")], "missingParamMeetingID"),
        (&[("meetingID", ""), ("name", "x")], "missingParamMeetingID"),
        (&[("meetingID", "abc")], "missingParamName"),
        (&[("meetingID", "a"), ("name", "x")], "validationError"),
        (&[("meetingID", "a,b"), ("name", "x")], "validationError"),
    ];
    for (pairs, key) in cases {
        let body = get_xml(&client, &signed(&sim, "create", pairs)).await;
        assert_eq!(returncode(&body), "FAILED", "{body}");
        assert_eq!(message_key(&body), key, "{body}");
        assert!(!tag(&body, "message").unwrap().is_empty());
    }
    let long = "x".repeat(257);
    let body = get_xml(
        &client,
        &signed(&sim, "create", &[("meetingID", &long), ("name", "x")]),
    )
    .await;
    assert_eq!(message_key(&body), "validationError");
    let max = "é".repeat(256);
    let body = get_xml(
        &client,
        &signed(&sim, "create", &[("meetingID", &max), ("name", "x")]),
    )
    .await;
    assert_eq!(returncode(&body), "SUCCESS", "{body}");
    assert_eq!(sim.meeting_count(), 1);
}

#[tokio::test]
async fn checksums_are_verified_on_the_raw_query() {
    let sim = start().await;
    let client = client();
    let raw = "meetingID=c1&name=Caf%C3%A9+%26+Co";

    let wrong = format!(
        "{}api/create?{raw}&checksum={}",
        sim.url(),
        sign(ChecksumAlgorithm::Sha1, "create", raw, "other-secret")
    );
    let body = get_xml(&client, &wrong).await;
    assert_eq!(returncode(&body), "FAILED");
    assert_eq!(message_key(&body), "checksumError");
    assert_eq!(
        tag(&body, "message").unwrap(),
        "You did not pass the checksum security check"
    );

    let missing = format!("{}api/create?{raw}", sim.url());
    assert_eq!(
        message_key(&get_xml(&client, &missing).await),
        "checksumError"
    );

    // Signed for another call.
    let other_call = format!(
        "{}api/create?{raw}&checksum={}",
        sim.url(),
        sign(ChecksumAlgorithm::Sha1, "join", raw, sim.secret())
    );
    assert_eq!(
        message_key(&get_xml(&client, &other_call).await),
        "checksumError"
    );
    assert_eq!(sim.meeting_count(), 0);

    // Every algorithm, upper-case hex, checksum in the middle of the query.
    for (i, algorithm) in ChecksumAlgorithm::ALL.into_iter().enumerate() {
        let id = format!("algo-{i}");
        let q = format!("meetingID={id}&name=X");
        let sum = sign(algorithm, "create", &q, sim.secret()).to_uppercase();
        let url = format!(
            "{}api/create?meetingID={id}&checksum={sum}&name=X",
            sim.url()
        );
        let body = get_xml(&client, &url).await;
        assert_eq!(returncode(&body), "SUCCESS", "{algorithm:?}: {body}");
    }

    // Decoded parameters reach the meeting.
    let ok = format!(
        "{}api/create?{raw}&checksum={}",
        sim.url(),
        sign(ChecksumAlgorithm::Sha256, "create", raw, sim.secret())
    );
    let body = get_xml(&client, &ok).await;
    assert_eq!(returncode(&body), "SUCCESS");
    let info = get_xml(
        &client,
        &signed(&sim, "getMeetingInfo", &[("meetingID", "c1")]),
    )
    .await;
    assert_eq!(tag(&info, "meetingName").unwrap(), "Café & Co");

    // `getMeetings?&checksum=...` (empty rest) is valid.
    let url = format!(
        "{}api/getMeetings?&checksum={}",
        sim.url(),
        sign(ChecksumAlgorithm::Sha1, "getMeetings", "", sim.secret())
    );
    assert_eq!(returncode(&get_xml(&client, &url).await), "SUCCESS");

    // Malformed encoding with a correct checksum.
    let bad = "meetingID=%zz&name=x";
    let url = signed_with(&sim, ChecksumAlgorithm::Sha1, "create", bad);
    let body = get_xml(&client, &url).await;
    assert_eq!(returncode(&body), "FAILED");
    assert_eq!(message_key(&body), "validationError");
}

#[tokio::test]
async fn unknown_calls_and_wrong_methods_are_unsupported() {
    let sim = start().await;
    let client = client();
    let body = get_xml(&client, &signed(&sim, "frobnicate", &[])).await;
    assert_eq!(returncode(&body), "FAILED");
    assert_eq!(message_key(&body), "unsupportedRequest");
    assert_eq!(
        tag(&body, "message").unwrap(),
        "This request is not supported."
    );
    assert_eq!(sim.request_count("frobnicate"), 1);

    sim.create_meeting_directly("m1", "M");
    let url = signed(
        &sim,
        "join",
        &[("meetingID", "m1"), ("fullName", "A"), ("role", "VIEWER")],
    );
    let response = client.post(&url).send().await.unwrap();
    let body = check_xml(response).await;
    assert_eq!(message_key(&body), "unsupportedRequest");
    assert_eq!(sim.attendee_count("m1"), Some(0));

    let response = client
        .get(format!("http://{}/elsewhere", sim.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn post_create_with_form_and_xml_bodies() {
    let sim = start().await;
    let client = client();
    let form = "application/x-www-form-urlencoded";

    // Everything in the body, checksum over the (empty) URL query (Scalelite style).
    let body_params = query(&[("meetingID", "p1"), ("name", "Posted")]);
    let url = signed_with(&sim, ChecksumAlgorithm::Sha1, "create", "");
    let response = client
        .post(&url)
        .header("content-type", form)
        .body(body_params.clone())
        .send()
        .await
        .unwrap();
    let body = check_xml(response).await;
    assert_eq!(returncode(&body), "SUCCESS", "{body}");
    assert_eq!(sim.attendee_count("p1"), Some(0));

    // Checksum over the body, sent in the body.
    let body_params = query(&[("meetingID", "p2"), ("name", "Posted")]);
    let sum = sign(
        ChecksumAlgorithm::Sha1,
        "create",
        &body_params,
        sim.secret(),
    );
    let response = client
        .post(format!("{}api/create", sim.url()))
        .header("content-type", form)
        .body(format!("{body_params}&checksum={sum}"))
        .send()
        .await
        .unwrap();
    assert_eq!(returncode(&check_xml(response).await), "SUCCESS");

    // Checksum over the body, sent in the URL.
    let body_params = query(&[("meetingID", "p3"), ("name", "Posted")]);
    let sum = sign(
        ChecksumAlgorithm::Sha256,
        "create",
        &body_params,
        sim.secret(),
    );
    let response = client
        .post(format!("{}api/create?checksum={sum}", sim.url()))
        .header("content-type", form)
        .body(body_params)
        .send()
        .await
        .unwrap();
    assert_eq!(returncode(&check_xml(response).await), "SUCCESS");

    // Wrong checksum over the body.
    let response = client
        .post(format!(
            "{}api/create?checksum={}",
            sim.url(),
            "0".repeat(40)
        ))
        .header("content-type", form)
        .body(query(&[("meetingID", "p4"), ("name", "x")]))
        .send()
        .await
        .unwrap();
    assert_eq!(message_key(&check_xml(response).await), "checksumError");

    // Same parameter in URL and body.
    let url = signed(&sim, "create", &[("meetingID", "p5"), ("name", "x")]);
    let response = client
        .post(&url)
        .header("content-type", form)
        .body("name=y")
        .send()
        .await
        .unwrap();
    assert_eq!(returncode(&check_xml(response).await), "FAILED");

    // XML body with slides, checksum over the URL query.
    let slides = r#"<modules><module name="presentation"><document url="https://example.org/a.pdf"/></module></modules>"#;
    let url = signed(&sim, "create", &[("meetingID", "p6"), ("name", "Slides")]);
    let response = client
        .post(&url)
        .header("content-type", "application/xml")
        .body(slides)
        .send()
        .await
        .unwrap();
    assert_eq!(returncode(&check_xml(response).await), "SUCCESS");

    // Unsupported content type.
    let url = signed(&sim, "create", &[("meetingID", "p7"), ("name", "x")]);
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        message_key(&check_xml(response).await),
        "unsupportedContentType"
    );

    let mut ids = sim.meeting_ids();
    ids.sort();
    assert_eq!(ids, ["p1", "p2", "p3", "p6"]);
}

#[tokio::test]
async fn join_roles_passwords_and_xml_answer() {
    let sim = start().await;
    let client = client();
    let created = get_xml(
        &client,
        &signed(
            &sim,
            "create",
            &[
                ("meetingID", "j1"),
                ("name", "Join"),
                ("attendeePW", "ap"),
                ("moderatorPW", "mp"),
                ("meta_endCallbackUrl", "https://lms.example/end?x=1&y=2"),
                ("meta_bbb-origin", "Moodle"),
            ],
        ),
    )
    .await;
    let internal = tag(&created, "internalMeetingID").unwrap();

    let unknown = get_xml(
        &client,
        &signed(
            &sim,
            "join",
            &[("meetingID", "nope"), ("fullName", "A"), ("role", "VIEWER")],
        ),
    )
    .await;
    assert_eq!(message_key(&unknown), "notFound");

    let bad = get_xml(
        &client,
        &signed(
            &sim,
            "join",
            &[("meetingID", "j1"), ("fullName", "A"), ("password", "zz")],
        ),
    )
    .await;
    assert_eq!(returncode(&bad), "FAILED");
    assert_eq!(message_key(&bad), "invalidPassword");

    let neither = get_xml(
        &client,
        &signed(&sim, "join", &[("meetingID", "j1"), ("fullName", "A")]),
    )
    .await;
    assert_eq!(message_key(&neither), "invalidPassword");

    let no_name = get_xml(
        &client,
        &signed(&sim, "join", &[("meetingID", "j1"), ("role", "viewer")]),
    )
    .await;
    assert_eq!(returncode(&no_name), "FAILED");
    assert_eq!(sim.attendee_count("j1"), Some(0));

    // Password decides the role; redirect=false gives XML.
    let joined = get_xml(
        &client,
        &signed(
            &sim,
            "join",
            &[
                ("meetingID", "j1"),
                ("fullName", "Grace <Admin> & Co"),
                ("password", "ap"),
                ("redirect", "false"),
                ("userdata-bbb_auto_join_audio", "true"),
            ],
        ),
    )
    .await;
    assert_eq!(returncode(&joined), "SUCCESS");
    assert_eq!(message_key(&joined), "successfullyJoined");
    assert_eq!(
        tag(&joined, "message").unwrap(),
        "You have joined successfully."
    );
    assert_eq!(tag(&joined, "meeting_id").unwrap(), internal);
    assert!(tag(&joined, "user_id").unwrap().starts_with("w_"));
    assert!(!tag(&joined, "auth_token").unwrap().is_empty());
    assert_eq!(tag(&joined, "guestStatus").unwrap(), "ALLOW");
    let token = tag(&joined, "session_token").unwrap();
    assert_eq!(
        tag(&joined, "url").unwrap(),
        format!(
            "http://{}/html5client/join?sessionToken={token}",
            sim.addr()
        )
    );

    assert_eq!(
        sim.last_join_params("j1").unwrap(),
        vec![
            ("meetingID".to_owned(), "j1".to_owned()),
            ("fullName".to_owned(), "Grace <Admin> & Co".to_owned()),
            ("password".to_owned(), "ap".to_owned()),
            ("redirect".to_owned(), "false".to_owned()),
            ("userdata-bbb_auto_join_audio".to_owned(), "true".to_owned()),
        ]
    );

    let response = client
        .get(signed(
            &sim,
            "join",
            &[("meetingID", "j1"), ("fullName", "M"), ("password", "mp")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(sim.attendee_count("j1"), Some(2));

    let info = get_xml(
        &client,
        &signed(&sim, "getMeetingInfo", &[("meetingID", "j1")]),
    )
    .await;
    assert_eq!(returncode(&info), "SUCCESS");
    for field in [
        "meetingName",
        "meetingID",
        "internalMeetingID",
        "createTime",
        "createDate",
        "voiceBridge",
        "dialNumber",
        "attendeePW",
        "moderatorPW",
        "running",
        "duration",
        "hasUserJoined",
        "recording",
        "hasBeenForciblyEnded",
        "startTime",
        "endTime",
        "participantCount",
        "listenerCount",
        "voiceParticipantCount",
        "videoCount",
        "maxUsers",
        "moderatorCount",
        "attendees",
        "attendee",
        "userID",
        "fullName",
        "role",
        "isPresenter",
        "isListeningOnly",
        "hasJoinedVoice",
        "hasVideo",
        "clientType",
        "customdata",
        "metadata",
        "isBreakout",
    ] {
        assert!(tag(&info, field).is_some(), "{field} missing: {info}");
    }
    assert_eq!(tag(&info, "fullName").unwrap(), "Grace <Admin> & Co");
    assert_eq!(tag(&info, "role").unwrap(), "VIEWER");
    assert_eq!(tag(&info, "clientType").unwrap(), "HTML5");
    assert_eq!(tag(&info, "bbb_auto_join_audio").unwrap(), "true");
    assert_eq!(tag(&info, "participantCount").unwrap(), "2");
    assert_eq!(tag(&info, "moderatorCount").unwrap(), "1");
    assert_eq!(
        tag(&info, "endcallbackurl").unwrap(),
        "https://lms.example/end?x=1&y=2"
    );
    assert_eq!(tag(&info, "bbb-origin").unwrap(), "Moodle");
    assert_eq!(tag(&info, "isBreakout").unwrap(), "false");

    let missing = get_xml(
        &client,
        &signed(&sim, "getMeetingInfo", &[("meetingID", "nope")]),
    )
    .await;
    assert_eq!(message_key(&missing), "notFound");
    let unknown_running = get_xml(
        &client,
        &signed(&sim, "isMeetingRunning", &[("meetingID", "nope")]),
    )
    .await;
    assert_eq!(returncode(&unknown_running), "SUCCESS");
    assert_eq!(tag(&unknown_running, "running").unwrap(), "false");
}

#[tokio::test]
async fn insert_document_and_send_chat_message() {
    let sim = start().await;
    let client = client();
    sim.create_meeting_directly("d1", "Docs");
    let xml_body = r#"<modules><module name="presentation"><document url="https://example.org/b.pdf"/></module></modules>"#;

    let response = client
        .post(signed(&sim, "insertDocument", &[("meetingID", "d1")]))
        .header("content-type", "text/xml")
        .body(xml_body)
        .send()
        .await
        .unwrap();
    assert_eq!(returncode(&check_xml(response).await), "SUCCESS");

    let response = client
        .post(signed(&sim, "insertDocument", &[("meetingID", "nope")]))
        .header("content-type", "text/xml")
        .body(xml_body)
        .send()
        .await
        .unwrap();
    assert_eq!(message_key(&check_xml(response).await), "notFound");

    let get = get_xml(
        &client,
        &signed(&sim, "insertDocument", &[("meetingID", "d1")]),
    )
    .await;
    assert_eq!(message_key(&get), "unsupportedRequest");

    let chat = get_xml(
        &client,
        &signed(
            &sim,
            "sendChatMessage",
            &[("meetingID", "d1"), ("message", "hello")],
        ),
    )
    .await;
    assert_eq!(returncode(&chat), "SUCCESS");
}

#[tokio::test]
async fn failure_modes() {
    let sim = start().await;
    let client = client();
    let create = signed(&sim, "create", &[("meetingID", "f1"), ("name", "F")]);
    let meetings = signed(&sim, "getMeetings", &[]);

    sim.set_failure(FailureMode::ErrorResponse);
    let body = get_xml(&client, &meetings).await;
    assert_eq!(returncode(&body), "FAILED");
    assert_eq!(message_key(&body), "simulatedError");
    // The index is never affected.
    let index = get_xml(&client, &format!("{}api", sim.url())).await;
    assert_eq!(returncode(&index), "SUCCESS");

    sim.set_failure(FailureMode::Garbage);
    let response = client.get(&meetings).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "<<garbage");

    sim.set_failure(FailureMode::Http500);
    let response = client.get(&meetings).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    sim.set_failure(FailureMode::Timeout);
    let started = Instant::now();
    let result = client
        .get(&meetings)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_secs(5));

    sim.set_failure(FailureMode::RefuseCreate);
    let body = get_xml(&client, &create).await;
    assert_eq!(returncode(&body), "FAILED");
    assert_eq!(message_key(&body), "simulatedError");
    assert_eq!(sim.meeting_count(), 0);
    sim.create_meeting_directly("direct", "Direct");
    let body = get_xml(&client, &meetings).await;
    assert_eq!(returncode(&body), "SUCCESS");
    assert_eq!(tag(&body, "meetingID").unwrap(), "direct");

    sim.set_failure(FailureMode::None);
    assert_eq!(sim.failure(), FailureMode::None);
    let body = get_xml(&client, &create).await;
    assert_eq!(returncode(&body), "SUCCESS");
    assert_eq!(sim.meeting_count(), 2);

    assert_eq!(sim.request_count("getMeetings"), 5);
    assert_eq!(sim.request_count("create"), 2);
}

#[tokio::test]
async fn latency_is_added_to_answers() {
    let sim = Simulator::start(SimulatorConfig {
        latency: Duration::from_millis(150),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let client = client();
    let url = signed(&sim, "getMeetings", &[]);
    let started = Instant::now();
    get_xml(&client, &url).await;
    assert!(started.elapsed() >= Duration::from_millis(150));

    sim.set_latency(Duration::ZERO);
    let started = Instant::now();
    get_xml(&client, &url).await;
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn custom_secret_and_version() {
    let sim = Simulator::start(SimulatorConfig {
        secret: "another".into(),
        bbb_version: "2.7.3".into(),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let client = client();
    assert_eq!(sim.secret(), "another");
    let index = get_xml(&client, &format!("{}api/", sim.url())).await;
    assert_eq!(tag(&index, "bbbVersion").unwrap(), "2.7.3");
    let body = get_xml(&client, &signed(&sim, "getMeetings", &[])).await;
    assert_eq!(returncode(&body), "SUCCESS");
}

#[tokio::test]
async fn shutdown_refuses_connections() {
    let sim = start().await;
    let client = client();
    let url = signed(&sim, "getMeetings", &[]);
    get_xml(&client, &url).await;
    // A request hanging in Timeout mode must not block the shutdown.
    sim.set_failure(FailureMode::Timeout);
    let hanging = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move { client.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    sim.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(hanging.await.unwrap().is_err());
    let err = client.get(&url).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let fresh = reqwest::Client::new().get(&url).send().await.unwrap_err();
    assert!(fresh.is_connect(), "{fresh:?}");
    // The state stays readable; a second shutdown is harmless.
    assert_eq!(sim.meeting_count(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn thousands_of_meetings() {
    let sim = start().await;
    let client = client();
    let mut tasks = Vec::new();
    for chunk in 0..8 {
        let client = client.clone();
        let urls: Vec<String> = (0..250)
            .map(|i| {
                let id = format!("bulk-{chunk}-{i}");
                signed(&sim, "create", &[("meetingID", &id), ("name", "Bulk")])
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            for url in urls {
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(sim.meeting_count(), 2000);
    let list = get_xml(&client, &signed(&sim, "getMeetings", &[])).await;
    assert_eq!(list.matches("<meeting>").count(), 2000);
    assert_eq!(sim.request_count("create"), 2000);
}
