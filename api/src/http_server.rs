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
                // A connection that failed between the handshake and its
                // acceptance (reset, or out of descriptors for a moment):
                // the next one is served.
                Err(err) => {
                    tracing::debug!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
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
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(options.grace, graceful.shutdown()).await;
    Ok(())
}
