//! The HTTP backend client against a real server on loopback that answers
//! as told and keeps what it was sent.

use bytes::Bytes;
use std::time::Duration;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_workers::backend::{BackendError, BackendTarget, HttpBackendClient};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A server that answers every connection's first request with `answer`
/// (after `delay`) and reports the request's bytes.
async fn server(answer: Vec<u8>, delay: Duration) -> (String, mpsc::UnboundedReceiver<String>) {
    server_in_steps(vec![(delay, answer)]).await
}

/// A server that answers every connection's first request with each part
/// after its pause, then closes, and reports the request's bytes.
async fn server_in_steps(
    steps: Vec<(Duration, Vec<u8>)>,
) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bigbluebutton/", listener.local_addr().unwrap());
    let (sent, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let steps = steps.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text[..head_end]
                            .lines()
                            .find_map(|line| {
                                line.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .and_then(|n| n.trim().parse::<usize>().ok())
                            })
                            .unwrap_or(0);
                        if request.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = sent.send(String::from_utf8_lossy(&request).to_string());
                for (pause, part) in steps {
                    tokio::time::sleep(pause).await;
                    let _ = socket.write_all(&part).await;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, received)
}

fn answer(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn target(url: &str) -> BackendTarget<'_> {
    BackendTarget {
        url,
        secret: "the-secret",
        algorithm: ChecksumAlgorithm::Sha1,
    }
}

const SUCCESS: &str = "<response><returncode>SUCCESS</returncode></response>";

#[tokio::test]
async fn a_get_is_signed_and_its_answer_read_whole() {
    let (url, mut sent) = server(answer("200 OK", SUCCESS), Duration::ZERO).await;
    let client = HttpBackendClient::new();
    let response = client
        .get(
            target(&url),
            "getMeetingInfo",
            "meetingID=a",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(
        (response.status, &response.body[..]),
        (200, SUCCESS.as_bytes())
    );
    let request = sent.recv().await.unwrap();
    let expected = target(&url).signed_url("getMeetingInfo", "meetingID=a");
    let path = expected.split_once("/bigbluebutton/").unwrap().1;
    assert!(
        request.starts_with(&format!("GET /bigbluebutton/{path} HTTP/1.1\r\n")),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("user-agent: switchboard/"),
        "{request}"
    );
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("\r\nhost: {host}\r\n")),
        "{request}"
    );
}

#[tokio::test]
async fn a_post_carries_its_body_and_content_type() {
    let (url, mut sent) = server(answer("200 OK", SUCCESS), Duration::ZERO).await;
    let client = HttpBackendClient::new();
    client
        .post(
            target(&url),
            "create",
            "meetingID=a",
            "application/xml",
            Bytes::from_static(b"<modules/>"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let request = sent.recv().await.unwrap();
    assert!(request.starts_with("POST /bigbluebutton/api/create?meetingID=a&checksum="));
    assert!(
        request
            .to_ascii_lowercase()
            .contains("content-type: application/xml")
    );
    assert!(request.ends_with("\r\n\r\n<modules/>"), "{request}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_other_statuses_are_errors() {
    let redirect =
        b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\n\r\n";
    let (url, _) = server(redirect.to_vec(), Duration::ZERO).await;
    let client = HttpBackendClient::new();
    let err = client
        .get(target(&url), "getMeetings", "", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Status(302)), "{err:?}");
    let (url, _) = server(answer("503 Service Unavailable", "busy"), Duration::ZERO).await;
    let err = client
        .get(target(&url), "getMeetings", "", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Status(503)), "{err:?}");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let (url, _) = server(answer("200 OK", SUCCESS), Duration::from_secs(5)).await;
    let err = HttpBackendClient::new()
        .get(target(&url), "getMeetings", "", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn an_answer_larger_than_the_cap_is_refused() {
    let max = switchboard_app::backend::MAX_ANSWER_BYTES;
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", max + 1);
    let mut huge = head.into_bytes();
    huge.resize(huge.len() + max + 1, b'x');
    let (url, _) = server(huge, Duration::ZERO).await;
    let err = HttpBackendClient::new()
        .get(target(&url), "getMeetings", "", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn an_announced_length_over_the_cap_is_refused_before_the_body() {
    // Headers only: read on, the body would end early (a transfer error),
    // not be too large.
    let max = switchboard_app::backend::MAX_ANSWER_BYTES;
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", max + 1);
    let (url, _) = server(head.into_bytes(), Duration::ZERO).await;
    let err = HttpBackendClient::new()
        .get(target(&url), "getMeetings", "", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn an_answer_stalling_after_its_headers_times_out() {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n<response>",
        SUCCESS.len()
    );
    let (url, _) = server_in_steps(vec![
        (Duration::ZERO, head.into_bytes()),
        (Duration::from_secs(5), b"<returncode>".to_vec()),
    ])
    .await;
    let err = HttpBackendClient::new()
        .get(target(&url), "getMeetings", "", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn an_https_server_is_reached_through_tls() {
    // A listener that answers in plain HTTP at once: a client that tries a
    // TLS handshake fails it; one that skipped TLS would read a 200.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/bigbluebutton/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(&answer("200 OK", SUCCESS)).await;
            let _ = socket.shutdown().await;
        }
    });
    let err = HttpBackendClient::new()
        .get(target(&url), "getMeetings", "", Duration::from_secs(5))
        .await
        .unwrap_err();
    let BackendError::Connect(text) = &err else {
        panic!("{err:?}");
    };
    assert!(!text.contains("scheme"), "{text}");
}

#[tokio::test]
async fn credentials_in_a_servers_url_are_sent_as_basic_authentication() {
    let (url, mut sent) = server(answer("200 OK", SUCCESS), Duration::ZERO).await;
    let url = url.replace("http://", "http://bbb:s%20cret@");
    HttpBackendClient::new()
        .get(target(&url), "getMeetings", "", Duration::from_secs(5))
        .await
        .unwrap();
    let request = sent.recv().await.unwrap();
    // base64("bbb:s cret")
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: basic ymjionmgy3jlda=="),
        "{request}"
    );
    assert!(request.starts_with("GET /bigbluebutton/api/getMeetings?checksum="));
}

#[tokio::test]
async fn a_proxy_carries_the_call_when_one_is_set() {
    let (proxy, mut sent) = server(answer("200 OK", SUCCESS), Duration::ZERO).await;
    let proxy = proxy.trim_end_matches("/bigbluebutton/").to_owned();
    let client = HttpBackendClient::with_proxy(&proxy).unwrap();
    let response = client
        .get(
            target("http://bbb.example.invalid/bigbluebutton/"),
            "getMeetings",
            "",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(&response.body[..], SUCCESS.as_bytes());
    let request = sent.recv().await.unwrap();
    assert!(
        request
            .starts_with("GET http://bbb.example.invalid/bigbluebutton/api/getMeetings?checksum="),
        "{request}"
    );
}

#[tokio::test]
async fn a_chunked_answer_is_read_whole_and_capped_too() {
    let chunked = |chunks: &[&[u8]]| {
        let mut answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for chunk in chunks {
            answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            answer.extend_from_slice(chunk);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        answer
    };
    let (url, _) = server(
        chunked(&[
            b"<response><returncode>",
            b"SUCCESS</returncode></response>",
        ]),
        Duration::ZERO,
    )
    .await;
    let client = HttpBackendClient::new();
    let response = client
        .get(target(&url), "getMeetings", "", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(&response.body[..], SUCCESS.as_bytes());
    let max = switchboard_app::backend::MAX_ANSWER_BYTES;
    let half = vec![b'x'; max / 2 + 1];
    let (url, _) = server(chunked(&[&half, &half]), Duration::ZERO).await;
    let err = client
        .get(target(&url), "getMeetings", "", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn a_refused_connection_says_why_without_the_signed_url() {
    // A port nobody listens on: bound, then let go.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/bigbluebutton/");
    let err = HttpBackendClient::new()
        .get(target(&url), "getMeetings", "", Duration::from_secs(5))
        .await
        .unwrap_err();
    let BackendError::Connect(text) = &err else {
        panic!("{err:?}");
    };
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(
        !text.contains("checksum") && !text.contains("getMeetings"),
        "{text}"
    );
}

/// Each connection reads through a fixed buffer: a head larger than 16 KiB
/// (a proxy's cookies, say) still fits, and a listing of 1 MB is read
/// whole through it.
#[tokio::test]
async fn a_large_head_and_a_large_body_are_read_through_the_fixed_buffer() {
    let body = format!(
        "<response><returncode>SUCCESS</returncode><meetings>{}</meetings></response>",
        "<meeting><meetingID>m</meetingID></meeting>".repeat(25_000)
    );
    let cookie = "x".repeat(20_000);
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\nset-cookie: big={cookie}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (url, _sent) = server(
        [head.into_bytes(), body.clone().into_bytes()].concat(),
        Duration::ZERO,
    )
    .await;
    let response = HttpBackendClient::new()
        .get(target(&url), "getMeetings", "", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(response.body.len(), body.len());
    assert_eq!(&response.body[..], body.as_bytes());
}
