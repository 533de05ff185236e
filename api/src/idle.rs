//! Connections that stall are closed: a connection whose reads and writes
//! fail once no byte moved either way for the idle timeout, so a client
//! idling between requests, or stalled half-way through sending one
//! (headers or body), never holds a connection and its task forever. (A
//! graceful shutdown on idleness would wait for a half-read request.) Each
//! holds its place under the accept loop's connection limit until dropped.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// A connection that fails once no byte moved for its timeout; it holds
/// its place under the connection limit until dropped.
#[derive(Debug)]
pub struct IdleIo<T> {
    inner: T,
    timeout: Duration,
    /// When a byte last moved.
    last_moved: Instant,
    /// Fires no later than `last_moved + timeout`; moved on only when it
    /// fires early (re-arming a timer on every read and write cost more
    /// than reading the clock).
    deadline: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl<T> IdleIo<T> {
    /// `inner`, failing once no byte moved for `timeout`; holds `permit`
    /// until dropped.
    pub fn new(inner: T, timeout: Duration, permit: OwnedSemaphorePermit) -> Self {
        let now = Instant::now();
        Self {
            inner,
            timeout,
            last_moved: now,
            deadline: Box::pin(tokio::time::sleep_until(now + timeout)),
            _permit: permit,
        }
    }

    fn moved(&mut self) {
        self.last_moved = Instant::now();
    }

    /// Whether no byte moved for the timeout; otherwise the waker is
    /// registered for when that could first be so.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_moved + self.timeout;
            if due <= Instant::now() {
                return true;
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::Semaphore;

    fn idle_io(timeout: Duration) -> (IdleIo<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(64);
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        (IdleIo::new(ours, timeout, permit), theirs)
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_keeps_a_connection_open_and_silence_closes_it_after_the_timeout() {
        let timeout = Duration::from_secs(10);
        let (mut io, mut peer) = idle_io(timeout);
        let started = Instant::now();
        let mut byte = [0u8; 1];
        // A byte every 6 s for a minute: never 10 s without traffic.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            peer.write_all(b"x").await.unwrap();
            io.read_exact(&mut byte).await.unwrap();
        }
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        let quiet = Instant::now();
        let err = io.read(&mut byte).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(quiet.elapsed(), timeout, "closed 10 s after the last byte");
    }

    #[tokio::test(start_paused = true)]
    async fn writes_count_as_traffic() {
        let timeout = Duration::from_secs(10);
        let (mut io, mut peer) = idle_io(timeout);
        let mut byte = [0u8; 1];
        tokio::time::sleep(Duration::from_secs(8)).await;
        io.write_all(b"y").await.unwrap();
        peer.read_exact(&mut byte).await.unwrap();
        let after_write = Instant::now();
        let err = io.read(&mut byte).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(after_write.elapsed(), timeout);
    }
}
