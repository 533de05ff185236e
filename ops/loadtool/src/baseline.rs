//! The baseline: the least a join can cost. A minimal hyper server that
//! verifies the sha1 checksum of `/bigbluebutton/api/join` and answers 302.
//! For getMeetings ([`Baseline::start_static`]) it verifies the checksum of
//! `/bigbluebutton/api/getMeetings` and answers a fixed body: the least an
//! answer of that size can cost. For create, getMeetingInfo and
//! isMeetingRunning ([`Baseline::start_forwarding`]) it verifies the
//! checksum, re-signs the call for the server the meetingID hashes to and
//! relays that server's answer: the same job as Switchboard's without state.
//!
//! It runs on its own thread and Tokio runtime (as many workers as the machine
//! has cores, like Switchboard's) so that, like Switchboard in its own process,
//! it does not share the load generator's threads.

use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
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
    /// create, getMeetingInfo, isMeetingRunning: relayed to a server.
    Forward(Arc<Forwarding>),
}

/// The simulated servers a forwarding baseline relays to, and its client.
#[derive(Debug)]
struct Forwarding {
    servers: Vec<Upstream>,
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// One server: its API address (`http://host:port/bigbluebutton/api/`) and
/// secret.
#[derive(Debug)]
struct Upstream {
    api: String,
    secret: String,
}

/// The calls a forwarding baseline relays.
const FORWARDED: [&str; 3] = ["create", "getMeetingInfo", "isMeetingRunning"];

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

    /// Like [`Baseline::start`], but relays correctly signed creates,
    /// getMeetingInfo and isMeetingRunning calls to one of `servers` (each
    /// `(base URL ending in /bigbluebutton/, secret)`), chosen by a hash of
    /// the meetingID so a meeting's calls reach the server that has it;
    /// re-signed with that server's secret over a pooled keep-alive hyper
    /// client, the answer relayed as it came.
    pub fn start_forwarding(
        servers: Vec<(String, String)>,
        secret: String,
        threads: usize,
    ) -> anyhow::Result<Baseline> {
        anyhow::ensure!(!servers.is_empty(), "a forwarding baseline needs a server");
        // The client spawns its connection tasks on the runtime it is used
        // from: the baseline's own.
        let forwarding = Forwarding {
            servers: servers
                .into_iter()
                .map(|(base, secret)| Upstream {
                    api: format!("{}/api/", base.trim_end_matches('/')),
                    secret,
                })
                .collect(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        };
        Baseline::serving(Answer::Forward(Arc::new(forwarding)), secret, threads)
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
                let kind = kind.clone();
                let secret = secret.clone();
                async move {
                    let answer = match &kind {
                        Answer::Forward(forwarding) => forward(&request, forwarding, &secret).await,
                        _ => answer(&request, &kind, &secret),
                    };
                    Ok::<_, Infallible>(answer)
                }
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
    checksum_error()
}

/// BBB's answer to a call that fails the checksum check.
fn checksum_error() -> Response<Full<Bytes>> {
    failed(
        "checksumError",
        "You did not pass the checksum security check",
    )
}

/// A BBB-style FAILED document.
fn failed(key: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Full::new(Bytes::from(format!(
            "<response><returncode>FAILED</returncode><messageKey>{key}</messageKey>\
             <message>{message}</message></response>"
        ))))
        .expect("static parts make a valid response")
}

/// Verifies a forwarded call, re-signs it for the server its meetingID
/// hashes to, and relays that server's answer.
async fn forward(
    request: &Request<Incoming>,
    forwarding: &Forwarding,
    secret: &str,
) -> Response<Full<Bytes>> {
    let uri = request.uri();
    let query = uri.query().unwrap_or("");
    let Some(call) = uri
        .path()
        .strip_prefix("/bigbluebutton/api/")
        .filter(|call| FORWARDED.contains(call))
    else {
        return checksum_error();
    };
    let Some(rest) = verified_rest(call, query, secret) else {
        return checksum_error();
    };
    let meeting_id = rest
        .split('&')
        .find_map(|pair| pair.strip_prefix("meetingID="))
        .unwrap_or("");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meeting_id.hash(&mut hasher);
    let server = &forwarding.servers[hasher.finish() as usize % forwarding.servers.len()];
    let mut signer = Sha1::new();
    signer.update(call.as_bytes());
    signer.update(rest.as_bytes());
    signer.update(server.secret.as_bytes());
    let checksum = hex::encode(signer.finalize());
    let target = if rest.is_empty() {
        format!("{}{call}?checksum={checksum}", server.api)
    } else {
        format!("{}{call}?{rest}&checksum={checksum}", server.api)
    };
    let relayed = async {
        let uri: hyper::Uri = target.parse()?;
        let answer = forwarding.client.get(uri).await?;
        let status = answer.status();
        let body = answer.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    match relayed.await {
        Ok((status, body)) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(Full::new(body))
            .expect("static parts make a valid response"),
        Err(err) => failed("serverUnreachable", &format!("relay failed: {err}")),
    }
}

/// Verifies `&checksum=HEX` (sha1; or `checksum=HEX` as the whole query, as
/// a call without parameters sends it) against `call + rest of the query +
/// secret`.
fn checksum_ok(call: &str, query: &str, secret: &str) -> bool {
    verified_rest(call, query, secret).is_some()
}

/// The query without its checksum when the checksum is right (see
/// [`checksum_ok`]).
fn verified_rest(call: &str, query: &str, secret: &str) -> Option<String> {
    let (start, value_start) = match query.strip_prefix("checksum=") {
        Some(_) => (0, "checksum=".len()),
        None => {
            let start = query.find("&checksum=")?;
            (start, start + "&checksum=".len())
        }
    };
    let value_end = query[value_start..]
        .find('&')
        .map_or(query.len(), |offset| value_start + offset);
    let given = &query[value_start..value_end];
    let rest = if start == 0 {
        query[value_end..]
            .strip_prefix('&')
            .unwrap_or_default()
            .to_owned()
    } else {
        format!("{}{}", &query[..start], &query[value_end..])
    };
    let mut hasher = Sha1::new();
    hasher.update(call.as_bytes());
    hasher.update(rest.as_bytes());
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
        .eq_ignore_ascii_case(given)
        .then_some(rest)
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relays_signed_calls_to_the_server_the_meeting_id_hashes_to() {
        use bbb_simulator::{Simulator, SimulatorConfig};
        let mut simulators = Vec::new();
        for secret in ["first-secret", "second-secret"] {
            simulators.push(
                Simulator::start(SimulatorConfig {
                    secret: secret.to_owned(),
                    ..SimulatorConfig::default()
                })
                .await
                .unwrap(),
            );
        }
        let servers = simulators
            .iter()
            .map(|simulator| (simulator.url(), simulator.secret().to_owned()))
            .collect();
        let server = Baseline::start_forwarding(servers, "s3cret".to_owned(), 1).unwrap();
        for n in 0..8 {
            let id = format!("room-{n}");
            let (_, created) = load::get(server.addr, &bbb::create(&id, "s3cret"))
                .await
                .unwrap();
            assert!(String::from_utf8_lossy(&created).contains("SUCCESS"));
            let (_, info) = load::get(server.addr, &bbb::get_meeting_info(&id, "s3cret"))
                .await
                .unwrap();
            let info = String::from_utf8_lossy(&info);
            assert!(
                info.contains(&format!("<meetingID>{id}</meetingID>")),
                "{info}"
            );
            let (_, running) = load::get(server.addr, &bbb::is_meeting_running(&id, "s3cret"))
                .await
                .unwrap();
            // Nobody joined: BBB says it is not running yet, but it knows it.
            let running = String::from_utf8_lossy(&running);
            assert!(
                running.contains("SUCCESS") && running.contains("<running>"),
                "{running}"
            );
        }
        let counts: Vec<usize> = simulators.iter().map(Simulator::meeting_count).collect();
        assert_eq!(counts.iter().sum::<usize>(), 8);
        assert!(counts.iter().all(|count| *count > 0), "{counts:?}");
        let (_, refused) = load::get(server.addr, &bbb::create("room-x", "wrong"))
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&refused).contains("checksumError"));
        let (_, join) = load::get(server.addr, &bbb::join("room-0", 1, "s3cret"))
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&join).contains("checksumError"));
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .unwrap();
        for simulator in &simulators {
            simulator.shutdown().await;
        }
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
