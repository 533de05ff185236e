//! The baseline: the least a join can cost. A minimal hyper server that
//! verifies the sha1 checksum of `/bigbluebutton/api/join` and answers 302.
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
            if let Err(err) = runtime.block_on(serve(listener, secret, stopped)) {
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
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let answer = answer(&request, &secret);
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// 302 for a correctly signed join, a BBB-style FAILED document otherwise.
fn answer(request: &Request<Incoming>, secret: &str) -> Response<Full<Bytes>> {
    let uri = request.uri();
    let query = uri.query().unwrap_or("");
    if uri.path() == "/bigbluebutton/api/join" && checksum_ok("join", query, secret) {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, format!("{BACKEND_JOIN}{query}"))
            .body(Full::new(Bytes::new()))
            .expect("static parts make a valid response");
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Full::new(Bytes::from_static(
            b"<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey>\
              <message>You did not pass the checksum security check</message></response>",
        )))
        .expect("static parts make a valid response")
}

/// Verifies `&checksum=HEX` (sha1) against `call + rest of the query + secret`.
fn checksum_ok(call: &str, query: &str, secret: &str) -> bool {
    let Some(start) = query.find("&checksum=") else {
        return false;
    };
    let value_start = start + "&checksum=".len();
    let value_end = query[value_start..]
        .find('&')
        .map_or(query.len(), |offset| value_start + offset);
    let given = &query[value_start..value_end];
    let mut hasher = Sha1::new();
    hasher.update(call.as_bytes());
    hasher.update(&query.as_bytes()[..start]);
    hasher.update(&query.as_bytes()[value_end..]);
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize()).eq_ignore_ascii_case(given)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb;
    use crate::load::{Expect, Load};
    use std::sync::Arc;
    use std::time::Duration;
    use switchboard_domain::checksum::{ChecksumAlgorithm, sign};

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
    }
}
