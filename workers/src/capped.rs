//! Reading an answer's body up to a cap, whether its length is declared or
//! it is chunked: servers' and exporters' answers are untrusted.

use bytes::{Buf as _, Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Body;

/// What went wrong reading a capped body (`E`: the body's transfer error).
#[derive(Debug)]
pub enum CappedError<E = reqwest::Error> {
    /// More than the cap.
    TooLarge,
    /// The transfer failed.
    Transfer(E),
}

/// The most set aside for a body before it arrives (from its declared
/// length): a getMeetings answer of several thousand meetings.
const PRESIZE_MAX: usize = 8 * 1024 * 1024;

/// The body of a reqwest `response`, refused past `max` bytes without
/// reading more.
pub async fn read_capped(response: reqwest::Response, max: usize) -> Result<Bytes, CappedError> {
    read_capped_body(hyper::Response::from(response), max).await
}

/// The body of any HTTP `response` (hyper's or reqwest's), refused past
/// `max` bytes without reading more: refused at once when its declared
/// length is larger, otherwise read into one buffer sized from that length
/// (a body grown by doubling holds up to twice its length while it is
/// read, and chunks gathered then copied are held twice).
pub async fn read_capped_body<B>(
    response: hyper::Response<B>,
    max: usize,
) -> Result<Bytes, CappedError<B::Error>>
where
    B: Body + Unpin,
{
    let declared = response.body().size_hint().exact();
    if declared.is_some_and(|length| length > max as u64) {
        return Err(CappedError::TooLarge);
    }
    // The declared length is untrusted: at most PRESIZE_MAX is set aside
    // before the bytes arrive.
    let declared = declared.unwrap_or(0) as usize;
    let mut body = BytesMut::with_capacity(declared.min(max).min(PRESIZE_MAX));
    let mut incoming = response.into_body();
    while let Some(frame) = incoming.frame().await {
        let Ok(chunk) = frame.map_err(CappedError::Transfer)?.into_data() else {
            continue;
        };
        if body.len() + chunk.remaining() > max {
            return Err(CappedError::TooLarge);
        }
        body.extend_from_slice(chunk.chunk());
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server answering `chunks` chunks of 1 KiB with chunked encoding.
    async fn chunked_server(chunks: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            for _ in 0..chunks {
                let mut chunk = b"400\r\n".to_vec();
                chunk.extend(std::iter::repeat_n(b'a', 1024));
                chunk.extend_from_slice(b"\r\n");
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_chunked_body_over_the_cap_is_refused() {
        crate::backend::install_crypto_provider();
        let url = chunked_server(100).await;
        let response = reqwest::get(&url).await.unwrap();
        assert!(matches!(
            read_capped(response, 10 * 1024).await,
            Err(CappedError::TooLarge)
        ));
        let url = chunked_server(5).await;
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(
            read_capped(response, 10 * 1024).await.unwrap().len(),
            5 * 1024
        );
    }
}
