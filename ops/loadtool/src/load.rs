//! A closed-loop HTTP/1.1 load generator: K keep-alive connections, each
//! sending its next request as soon as the previous answer is fully read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::stats::{Samples, Summary};

/// What a successful answer looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// HTTP 302 with a `Location` header (redirects are not followed).
    Redirect,
    /// HTTP 200 with `<returncode>SUCCESS</returncode>` in the body.
    Success,
    /// A redirect, or HTTP 200 with a BBB answer of either return code (a
    /// mix of calls, some of which may fairly fail).
    Answered,
}

/// Builds the path and query (`/bigbluebutton/api/...?...`) of request number
/// `seq`; numbers are unique across the connections of one run.
pub type MakeRequest = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// Looks at an answer's body: `Ok`, or what is wrong with it.
pub type CheckBody = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// A deeper look at the body of some answers, on top of [`Expect`]: the
/// answers to every `every`-th request (by sequence number) are handed to
/// `check`, which says what is wrong with them, if anything.
#[derive(Clone)]
pub struct BodyCheck {
    /// Check the answer to request `seq` when `seq % every == 0`.
    pub every: u64,
    /// `Ok`, or a short description of what is wrong (counted as an error).
    pub check: CheckBody,
}

impl std::fmt::Debug for BodyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyCheck")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct Load {
    /// The server to load.
    pub addr: SocketAddr,
    /// Concurrent connections, one request in flight on each.
    pub connections: usize,
    /// Requests sent during this first stretch are not counted: connections
    /// open and caches fill before the measurement starts.
    pub warmup: Duration,
    /// Stop sending once this much time has passed after the warm-up.
    pub duration: Duration,
    /// Stop sending after this many requests (over every connection).
    pub limit: u64,
    /// What a successful answer looks like.
    pub expect: Expect,
    /// A request not answered within this time counts as an error and its
    /// connection is replaced.
    pub timeout: Duration,
    /// Checks some answers' bodies in depth; none when `None`.
    pub body_check: Option<BodyCheck>,
}

impl Load {
    /// A timed run: as many requests as fit in `duration`, without warm-up.
    pub fn timed(addr: SocketAddr, connections: usize, duration: Duration, expect: Expect) -> Load {
        Load {
            addr,
            connections,
            warmup: Duration::ZERO,
            duration,
            limit: u64::MAX,
            expect,
            timeout: Duration::from_secs(10),
            body_check: None,
        }
    }

    /// The same run with a warm-up first.
    pub fn warmed(self, warmup: Duration) -> Load {
        Load { warmup, ..self }
    }

    /// The same run with some answers' bodies checked in depth.
    pub fn checked(self, body_check: BodyCheck) -> Load {
        Load {
            body_check: Some(body_check),
            ..self
        }
    }

    /// Runs the load and summarises it. Wall time runs from the end of the
    /// warm-up to the last answer.
    pub async fn run(&self, make: MakeRequest) -> Summary {
        let next = Arc::new(AtomicU64::new(0));
        let measure_from = Instant::now() + self.warmup;
        let deadline = measure_from + self.duration;
        let workers: Vec<_> = (0..self.connections)
            .map(|_| {
                let worker = Worker {
                    load: self.clone(),
                    make: Arc::clone(&make),
                    next: Arc::clone(&next),
                    measure_from,
                    deadline,
                };
                tokio::spawn(worker.run())
            })
            .collect();
        let mut samples = Samples::default();
        for worker in workers {
            match worker.await {
                Ok(part) => samples.merge(part),
                Err(err) => samples.error(format!("load worker failed: {err}")),
            }
        }
        Summary::new(samples, self.connections, measure_from.elapsed())
    }
}

/// One connection's loop.
struct Worker {
    load: Load,
    make: MakeRequest,
    next: Arc<AtomicU64>,
    measure_from: Instant,
    deadline: Instant,
}

impl Worker {
    async fn run(self) -> Samples {
        let mut samples = Samples::default();
        let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
        let host = self.load.addr.to_string();
        while Instant::now() < self.deadline {
            let seq = self.next.fetch_add(1, Ordering::Relaxed);
            if seq >= self.load.limit {
                break;
            }
            let connection = match sender.as_mut() {
                Some(connection) => connection,
                None => match connect(self.load.addr).await {
                    Ok(connection) => sender.insert(connection),
                    Err(err) => {
                        samples.error(format!("connect: {err}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let request = Request::get((self.make)(seq))
                .header(header::HOST, &host)
                .body(Empty::new())
                .expect("a path and query always make a valid request");
            let started = Instant::now();
            let answer =
                tokio::time::timeout(self.load.timeout, exchange(connection, request)).await;
            let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            // Warm-up answers count neither as successes nor in latencies;
            // failures always count.
            let counted = started >= self.measure_from;
            match answer {
                Ok(Ok((status, body))) => match check(self.load.expect, status, &body)
                    .and_then(|()| self.check_body(seq, counted, &body, &mut samples))
                {
                    Ok(()) if counted => {
                        samples.latencies_us.push(micros);
                        samples.ok += 1;
                    }
                    Ok(()) => {}
                    Err(description) => {
                        if counted {
                            samples.latencies_us.push(micros);
                        }
                        samples.error(description);
                    }
                },
                Ok(Err(err)) => {
                    samples.error(format!("transport: {err}"));
                    sender = None;
                }
                Err(_) => {
                    samples.error(format!("no answer within {:?}", self.load.timeout));
                    sender = None;
                }
            }
        }
        samples
    }

    /// Runs the body check on the answer to request `seq` when it is one of
    /// those to look at, counting it in `samples` when it passes and is
    /// measured.
    fn check_body(
        &self,
        seq: u64,
        counted: bool,
        body: &[u8],
        samples: &mut Samples,
    ) -> Result<(), String> {
        let Some(body_check) = &self.load.body_check else {
            return Ok(());
        };
        if !seq.is_multiple_of(body_check.every.max(1)) {
            return Ok(());
        }
        (body_check.check)(body)?;
        if counted {
            samples.checked += 1;
        }
        Ok(())
    }
}

/// Opens one keep-alive HTTP/1.1 connection.
async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends with an error when the server closes; the worker notices on its
        // next request.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer.
async fn exchange(
    sender: &mut SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let has_location = response.headers().contains_key(header::LOCATION);
    let body = response.into_body().collect().await?.to_bytes();
    if status == StatusCode::FOUND && !has_location {
        anyhow::bail!("302 without a Location header");
    }
    Ok((status, body))
}

/// One GET on a new connection, answered within 10 seconds.
pub async fn get(addr: SocketAddr, path_and_query: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let request = Request::get(path_and_query)
        .header(header::HOST, addr.to_string())
        .body(Empty::new())?;
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut sender = connect(addr).await?;
        exchange(&mut sender, request).await
    })
    .await?
}

/// One GET on a new connection that must be answered with a redirect,
/// within 10 seconds: the `Location` it points at.
pub async fn redirect_target(addr: SocketAddr, path_and_query: &str) -> anyhow::Result<String> {
    let request = Request::get(path_and_query)
        .header(header::HOST, addr.to_string())
        .body(Empty::new())?;
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut sender = connect(addr).await?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        match location {
            Some(location) if status == StatusCode::FOUND => Ok(location),
            _ => Err(anyhow::anyhow!(
                "{}",
                check(Expect::Redirect, status, &body)
                    .err()
                    .unwrap_or_else(|| "302 without a Location header".to_owned())
            )),
        }
    })
    .await?
}

/// Whether an answer is what the scenario expects; otherwise a short
/// description (status and the start of the body).
fn check(expect: Expect, status: StatusCode, body: &[u8]) -> Result<(), String> {
    let fine = match expect {
        Expect::Redirect => status == StatusCode::FOUND,
        Expect::Success => {
            status == StatusCode::OK && contains(body, b"<returncode>SUCCESS</returncode>")
        }
        Expect::Answered => {
            status == StatusCode::FOUND
                || (status == StatusCode::OK && contains(body, b"<returncode>"))
        }
    };
    if fine {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Err(format!("HTTP {}: {text}", status.as_u16()))
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_status_and_returncode() {
        assert!(check(Expect::Redirect, StatusCode::FOUND, b"").is_ok());
        assert!(
            check(
                Expect::Success,
                StatusCode::OK,
                b"<response><returncode>SUCCESS</returncode></response>"
            )
            .is_ok()
        );
        let failed = b"<response><returncode>FAILED</returncode><messageKey>notFound</messageKey></response>";
        assert_eq!(
            check(Expect::Redirect, StatusCode::OK, failed),
            Err(format!("HTTP 200: {}", String::from_utf8_lossy(failed)))
        );
        assert!(check(Expect::Success, StatusCode::OK, failed).is_err());
        assert!(check(Expect::Success, StatusCode::INTERNAL_SERVER_ERROR, b"").is_err());
    }
}
