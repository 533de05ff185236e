//! Reading a BBB call's body within the request limit, so that a client
//! sending too much still reads the answer.
//!
//! Answering while a client is still sending makes the kernel reset the
//! connection when it closes with unread bytes, and a client that writes its
//! whole body before reading (curl, Python's requests) then sees a reset,
//! never the answer. So an oversized body is read to its end and discarded,
//! up to [`DISCARD_LIMIT`] bytes and [`DISCARD_TIME`]; only a body beyond
//! both is cut off.

use futures::StreamExt;
use poem::Body;
use std::time::Duration;

/// The most bytes of an oversized body read and discarded before answering.
pub const DISCARD_LIMIT: u64 = 64 * 1024 * 1024;

/// The longest time spent discarding an oversized body.
pub const DISCARD_TIME: Duration = Duration::from_secs(10);

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (what was sent was discarded, within bounds).
    TooLarge,
    /// The client's stream failed (it hung up, or sent a malformed chunk).
    Broken,
}

/// Reads `body` when it holds at most `max` bytes; otherwise discards it
/// within the bounds above and answers [`BodyError::TooLarge`].
pub async fn read_limited(body: Body, max: usize) -> Result<bytes::Bytes, BodyError> {
    let mut stream = body.into_bytes_stream();
    let mut read = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if read.len() + chunk.len() > max {
            let seen = (read.len() + chunk.len()) as u64;
            discard(stream, seen).await;
            return Err(BodyError::TooLarge);
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read.freeze())
}

/// Discards what is left of an oversized body (see [`read_limited`]).
pub async fn discard_rest(body: Body) {
    discard(body.into_bytes_stream(), 0).await;
}

async fn discard<S>(mut stream: S, mut seen: u64)
where
    S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin,
{
    let drain = async {
        while seen < DISCARD_LIMIT {
            match stream.next().await {
                Some(Ok(chunk)) => seen += chunk.len() as u64,
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = Body::from_string("a=1&b=2".into());
        assert_eq!(read_limited(body, 7).await.unwrap(), "a=1&b=2");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_and_consumed() {
        let chunks = (0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 1000])));
        let body = Body::from_bytes_stream(futures::stream::iter(chunks));
        assert_eq!(read_limited(body, 1500).await, Err(BodyError::TooLarge));
    }

    #[tokio::test]
    async fn a_broken_stream_is_reported() {
        let chunks = vec![
            Ok(bytes::Bytes::from_static(b"a=")),
            Err(std::io::Error::other("hung up")),
        ];
        let body = Body::from_bytes_stream(futures::stream::iter(chunks));
        assert_eq!(read_limited(body, 100).await, Err(BodyError::Broken));
    }
}
