//! The accept loop: every connection served by hyper straight on its
//! socket, each request answered by the poem endpoint.
//!
//! Poem's own `Server` boxes each connection as a [`poem::listener::BoxIo`],
//! which splits the socket into halves behind a lock and hides that it
//! can write vectored. Hyper then copies every response into one flat
//! buffer before writing it (a whole getMeetings answer of thousands of
//! meetings, per connection) and every read and write takes the lock.
//! Here the socket reaches hyper as it is (wrapped only by [`IdleIo`]), so
//! a response goes out as the pieces it is made of, in one `writev`.

use crate::idle::IdleIo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use poem::Endpoint as _;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The body poem's responses convert to.
type ResponseBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// How the accept loop treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A connection with no byte moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// At most this many connections are open at once; further ones wait
    /// in the listen backlog until one closes.
    pub max_connections: usize,
    /// After `shutdown` resolves, open connections get this long to finish
    /// the requests they are answering before they are dropped.
    pub grace: Duration,
}

/// Serves `endpoint` on `listener` until `shutdown` resolves, then stops
/// accepting, lets open connections finish for the grace period and returns.
pub async fn serve(
    listener: TcpListener,
    endpoint: BoxEndpoint<'static>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let endpoint = Arc::new(endpoint);
    let local = LocalAddr(listener.local_addr()?.into());
    let open = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // Dropped after the grace period: every connection still open ends.
    let (drop_all, _) = tokio::sync::watch::channel(());
    // Not `pipeline_flush`: with it hyper buffers a whole body before
    // writing (every getMeetings answer in flight held at once).
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = open.clone().acquire_owned() => {
                permit.map_err(|_| std::io::Error::other("the connection limit is gone"))?
            }
        };
        let (socket, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(&err).await;
                    continue;
                }
            },
        };
        // Answers are written whole, so nothing waits for more to send.
        let _ = socket.set_nodelay(true);
        let io = IdleIo::new(socket, options.idle_timeout, permit);
        let remote = RemoteAddr(remote.into());
        let endpoint = endpoint.clone();
        let local = local.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let endpoint = endpoint.clone();
            let request = poem::Request::from((req, local.clone(), remote.clone(), Scheme::HTTP));
            async move {
                let response = endpoint.get_response(request).await;
                Ok::<_, Infallible>(hyper::Response::<ResponseBody>::from(response))
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let mut dropped = drop_all.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => {
                    if let Err(err) = ended {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                }
                // Past the grace period: the connection is dropped as it is.
                _ = dropped.changed() => {}
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(options.grace, graceful.shutdown()).await;
    drop(drop_all);
    Ok(())
}

/// Waits after a failed accept. A connection reset before it was accepted
/// is nothing; anything else (out of file descriptors) is said, and the
/// loop backs off for a moment instead of spinning.
async fn accept_failed(err: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    ) {
        tracing::debug!(error = %err, "a connection went before it was accepted");
        return;
    }
    tracing::warn!(error = %err, "cannot accept connections; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::EndpointExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn started(
        grace: Duration,
    ) -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = poem::Route::new()
            .at("/", poem::get(poem::endpoint::make_sync(|_| "hello")))
            .map_to_response()
            .boxed();
        let options = ServeOptions {
            idle_timeout: Duration::from_secs(60),
            max_connections: 4,
            grace,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, endpoint, options, async move {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    #[tokio::test]
    async fn answers_requests_on_a_kept_alive_connection() {
        let (addr, stop, server) = started(Duration::from_secs(1)).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        for _ in 0..2 {
            client
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut answer = vec![0u8; 1024];
            let read = client.read(&mut answer).await.unwrap();
            let answer = String::from_utf8_lossy(&answer[..read]);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.ends_with("hello"), "{answer}");
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    /// A client stalled half-way through its request holds its connection
    /// past a graceful shutdown for the grace period only.
    #[tokio::test]
    async fn a_stalled_connection_is_dropped_when_the_grace_period_ends() {
        let grace = Duration::from_millis(200);
        let (addr, stop, server) = started(grace).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stopping = std::time::Instant::now();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returned")
            .unwrap()
            .unwrap();
        assert!(stopping.elapsed() >= grace);
        // The connection's end reaches the client (EOF or a reset), not a
        // wait for the 60 s idle timeout.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), client.read_to_end(&mut rest))
            .await
            .expect("the server closed the stalled connection");
    }
}
