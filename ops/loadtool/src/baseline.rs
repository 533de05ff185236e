//! The baseline: the least a join can cost. A minimal hyper server that
//! verifies the sha1 checksum of `/bigbluebutton/api/join` and answers 302.
//! For getMeetings ([`Baseline::start_static`]) it verifies the checksum of
//! `/bigbluebutton/api/getMeetings` and answers a fixed body: the least an
//! answer of that size can cost.
//!
//! It runs on its own thread and Tokio runtime (as many workers as the machine
//! has cores, like Switchboard's) so that, like Switchboard in its own process,
//! it does not share the load generator's threads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::sync::oneshot;

/// Where the redirect points; never followed by the load generator.
const BACKEND_JOIN: &str = "http://127.0.0.1:1/bigbluebutton/api/join?";

/// What the baseline answers to a correctly signed request.
#[derive(Debug, Clone)]
enum Answer {
    /// `join`: a 302 to the backend.
    Join,
    /// `call`: 200 with this body.
    Static {
        /// The API call answered.
        call: &'static str,
        /// The body of every answer.
        body: Bytes,
    },
}

/// A running baseline server.
#[derive(Debug)]
pub struct Baseline {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Baseline {
    /// Binds `127.0.0.1` on a free port and serves from a new thread with
    /// `threads` runtime workers; checksums must be made with `secret`.
    pub fn start(secret: String, threads: usize) -> anyhow::Result<Baseline> {
        Baseline::serving(Answer::Join, secret, threads)
    }

    /// Like [`Baseline::start`], but answers correctly signed requests of
    /// `call` with HTTP 200 and `body` (shared, not copied, like a cached
    /// answer).
    pub fn start_static(
        call: &'static str,
        body: Bytes,
        secret: String,
        threads: usize,
    ) -> anyhow::Result<Baseline> {
        Baseline::serving(Answer::Static { call, body }, secret, threads)
    }

    /// Binds and serves `answer`.
    fn serving(answer: Answer, secret: String, threads: usize) -> anyhow::Result<Baseline> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("baseline")
            .enable_all()
            .build()
            .context("cannot start the baseline runtime")?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::spawn(move || {
            if let Err(err) = runtime.block_on(serve(listener, answer, secret, stopped)) {
                eprintln!("baseline server failed: {err:#}");
            }
        });
        Ok(Baseline {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until told to stop.
async fn serve(
    listener: std::net::TcpListener,
    kind: Answer,
    secret: String,
    mut stopped: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut stopped => return Ok(()),
        };
        stream.set_nodelay(true)?;
        let secret = secret.clone();
        let kind = kind.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let answer = answer(&request, &kind, &secret);
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// 302 for a correctly signed join, the fixed body for a correctly signed
/// static call, a BBB-style FAILED document otherwise.
fn answer(request: &Request<Incoming>, kind: &Answer, secret: &str) -> Response<Full<Bytes>> {
    let uri = request.uri();
    let query = uri.query().unwrap_or("");
    let call = uri.path().strip_prefix("/bigbluebutton/api/");
    match kind {
        Answer::Join if call == Some("join") && checksum_ok("join", query, secret) => {
            return Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, format!("{BACKEND_JOIN}{query}"))
                .body(Full::new(Bytes::new()))
                .expect("static parts make a valid response");
        }
        Answer::Static { call: wanted, body }
            if call == Some(*wanted) && checksum_ok(wanted, query, secret) =>
        {
            return Response::builder()
                .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(Full::new(body.clone()))
                .expect("static parts make a valid response");
        }
        _ => {}
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Full::new(Bytes::from_static(
            b"<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey>\
              <message>You did not pass the checksum security check</message></response>",
        )))
        .expect("static parts make a valid response")
}

/// Verifies `&checksum=HEX` (sha1; or `checksum=HEX` as the whole query, as
/// a call without parameters sends it) against `call + rest of the query +
/// secret`.
fn checksum_ok(call: &str, query: &str, secret: &str) -> bool {
    let (start, value_start) = match query.strip_prefix("checksum=") {
        Some(_) => (0, "checksum=".len()),
        None => match query.find("&checksum=") {
            Some(start) => (start, start + "&checksum=".len()),
            None => return false,
        },
    };
    let value_end = query[value_start..]
        .find('&')
        .map_or(query.len(), |offset| value_start + offset);
    let given = &query[value_start..value_end];
    let rest = if start == 0 {
        query[value_end..].strip_prefix('&').unwrap_or_default()
    } else {
        &query[value_end..]
    };
    let mut hasher = Sha1::new();
    hasher.update(call.as_bytes());
    hasher.update(&query.as_bytes()[..start]);
    hasher.update(rest.as_bytes());
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize()).eq_ignore_ascii_case(given)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb;
    use crate::load::{self, Expect, Load};
    use std::sync::Arc;
    use std::time::Duration;
    use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_signed_joins_with_302_under_load() {
        let server = Baseline::start("s3cret".to_owned(), 1).unwrap();
        let load = Load::timed(server.addr, 2, Duration::from_millis(200), Expect::Redirect)
            .warmed(Duration::from_millis(50));
        let good = load
            .run(Arc::new(|seq| bbb::join("m", seq, "s3cret")))
            .await;
        assert!(good.ok > 0);
        assert_eq!(good.errors, 0, "{:?}", good.error_samples);
        let bad = load.run(Arc::new(|seq| bbb::join("m", seq, "wrong"))).await;
        assert_eq!(bad.ok, 0);
        assert!(bad.errors > 0);
        assert!(bad.error_samples[0].contains("checksumError"));
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_signed_get_meetings_with_the_static_body() {
        let body = Bytes::from_static(
            b"<response><returncode>SUCCESS</returncode><meetings><meeting/></meetings></response>",
        );
        let server =
            Baseline::start_static("getMeetings", body.clone(), "s3cret".to_owned(), 1).unwrap();
        let (status, got) = load::get(server.addr, &bbb::get_meetings("s3cret"))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, body);
        let (_, refused) = load::get(server.addr, &bbb::get_meetings("wrong"))
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&refused).contains("checksumError"));
        let (_, join) = load::get(server.addr, &bbb::join("m", 1, "s3cret"))
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&join).contains("checksumError"));
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .unwrap();
    }

    #[test]
    fn accepts_what_switchboard_signing_produces() {
        let query = "fullName=A&meetingID=m&role=VIEWER";
        let sum = sign(ChecksumAlgorithm::Sha1, "join", query, "s3cret");
        assert!(checksum_ok(
            "join",
            &format!("{query}&checksum={sum}"),
            "s3cret"
        ));
        assert!(!checksum_ok(
            "join",
            &format!("{query}&checksum={sum}"),
            "other"
        ));
        assert!(!checksum_ok("join", query, "s3cret"));
        let alone = sign(ChecksumAlgorithm::Sha1, "getMeetings", "", "s3cret");
        assert!(checksum_ok(
            "getMeetings",
            &format!("checksum={alone}"),
            "s3cret"
        ));
        assert!(!checksum_ok(
            "getMeetings",
            &format!("checksum={alone}"),
            "x"
        ));
        let first = sign(ChecksumAlgorithm::Sha1, "join", "a=1", "s3cret");
        assert!(checksum_ok(
            "join",
            &format!("checksum={first}&a=1"),
            "s3cret"
        ));
    }
}
