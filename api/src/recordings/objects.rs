//! Playback of recordings kept in an object store (S3): after the same
//! checks as on disk (published; for protected recordings, the cookie of a
//! redeemed one-time link), the answer is either a redirect to a
//! short-lived presigned URL (`recordings.object_playback = "redirect"`,
//! the default) or the object streamed through Switchboard (`"stream"`),
//! with `ETag`, `Last-Modified`, conditional requests and single byte
//! ranges, as for files on disk.

use crate::config::RecordingSettings;
use poem::http::{HeaderMap, StatusCode, header};
use poem::{Body, Request, Response};
use std::ops::Range;
use std::time::Duration;
use switchboard_recordings::ObjectTree;
use switchboard_recordings::object_tree::{ObjectMeta, content_type};

/// What a `Range` header asks of an object of some size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole object (no range, an unusable one, or several).
    Full,
    /// These bytes.
    Partial(Range<u64>),
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// Reads a `Range` header (`bytes=a-b`, `bytes=a-`, `bytes=-n`) against an
/// object of `size` bytes. Several ranges and malformed ones are answered
/// with the whole object, as RFC 9110 allows.
pub fn parse_range(value: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (number(first), last.trim().is_empty(), number(last)) {
        // bytes=-n: the last n bytes.
        (None, false, Some(n)) if first.trim().is_empty() => {
            if n == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(size.saturating_sub(n)..size)
            }
        }
        (Some(start), true, _) => {
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(start..size)
            }
        }
        (Some(start), false, Some(end)) if start <= end => {
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(start..end.saturating_add(1).min(size))
            }
        }
        _ => RangeRequest::Full,
    }
}

/// Whether the object is video, audio or a raster image.
fn is_media(meta: &ObjectMeta) -> bool {
    let kind = content_type(meta.location.as_ref());
    kind.starts_with("video/")
        || kind.starts_with("audio/")
        || (kind.starts_with("image/") && kind != "image/svg+xml")
}

fn http_date(time: &chrono::DateTime<chrono::Utc>) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::from(*time))
}

/// Whether the request's validators say the client's copy is current.
fn not_modified(headers: &HeaderMap, meta: &ObjectMeta) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(tags) = header(header::IF_NONE_MATCH) {
        let Some(etag) = &meta.e_tag else {
            return false;
        };
        return tags
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == etag);
    }
    header(header::IF_MODIFIED_SINCE)
        .and_then(|since| httpdate::parse_http_date(since).ok())
        .is_some_and(|since| {
            let modified = std::time::SystemTime::from(meta.last_modified);
            // HTTP dates have whole seconds.
            modified
                .duration_since(since)
                .map(|newer| newer < Duration::from_secs(1))
                .unwrap_or(true)
        })
}

fn unavailable(err: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %err, "cannot read a recording from its object store");
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .body("recordings store unavailable")
}

/// Answers a playback request for `meta` of `tree`.
pub async fn serve(
    settings: &RecordingSettings,
    req: &Request,
    tree: &ObjectTree,
    meta: &ObjectMeta,
    protected: bool,
) -> Response {
    let cache = super::playback::cache_control(settings, protected);
    // Only media go to the store: the player fetches its XML, JSON, SVG and
    // pages with scripts, which a redirect to another origin would break
    // (CORS, relative links); video, audio and images load cross-origin.
    if settings.object_playback != "stream" && tree.can_presign() && is_media(meta) {
        let ttl = Duration::from_secs(settings.presign_ttl_secs.max(1));
        return match tree.presign(&meta.location, ttl).await {
            Ok(Some(url)) => {
                // The redirect may be reused only while its URL is valid.
                let cache = if protected {
                    cache
                } else {
                    format!(
                        "private, max-age={}",
                        (settings.presign_ttl_secs / 2).min(settings.cache_max_age_secs)
                    )
                };
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, url)
                    .header(header::CACHE_CONTROL, cache)
                    .body(())
            }
            Ok(None) => stream(req, tree, meta, &cache).await,
            Err(err) => unavailable(err),
        };
    }
    stream(req, tree, meta, &cache).await
}

/// Streams the object (or the asked range) through Switchboard.
async fn stream(req: &Request, tree: &ObjectTree, meta: &ObjectMeta, cache: &str) -> Response {
    let mut builder = Response::builder()
        .header(header::CACHE_CONTROL, cache)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::LAST_MODIFIED, http_date(&meta.last_modified));
    if let Some(etag) = &meta.e_tag {
        builder = builder.header(header::ETAG, etag.as_str());
    }
    if not_modified(req.headers(), meta) {
        return builder.status(StatusCode::NOT_MODIFIED).body(());
    }
    let if_range_ok = req
        .headers()
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|tag| meta.e_tag.as_deref() == Some(tag.trim()));
    let range = if if_range_ok {
        parse_range(
            req.headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok()),
            meta.size,
        )
    } else {
        RangeRequest::Full
    };
    let (status, bytes) = match range {
        RangeRequest::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{}", meta.size))
                .body(());
        }
        RangeRequest::Full => (StatusCode::OK, 0..meta.size),
        RangeRequest::Partial(range) => {
            builder = builder.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", range.start, range.end - 1, meta.size),
            );
            (StatusCode::PARTIAL_CONTENT, range)
        }
    };
    let length = bytes.end - bytes.start;
    let body = if length == 0 {
        Body::empty()
    } else {
        match tree.read(meta, Some(bytes)).await {
            Ok(stream) => Body::from_bytes_stream(stream),
            Err(err) => return unavailable(err),
        }
    };
    builder
        .status(status)
        .header(header::CONTENT_TYPE, content_type(meta.location.as_ref()))
        .header(header::CONTENT_LENGTH, length)
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let r = |v: &str| parse_range(Some(v), 100);
        assert_eq!(r("bytes=0-9"), RangeRequest::Partial(0..10));
        assert_eq!(r("bytes=90-"), RangeRequest::Partial(90..100));
        assert_eq!(r("bytes=-10"), RangeRequest::Partial(90..100));
        assert_eq!(r("bytes=-1000"), RangeRequest::Partial(0..100));
        assert_eq!(r("bytes=50-1000"), RangeRequest::Partial(50..100));
        assert_eq!(r("bytes=100-"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=-0"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=9-0"), RangeRequest::Full);
        assert_eq!(r("bytes=0-1,5-6"), RangeRequest::Full);
        assert_eq!(r("bytes=a-b"), RangeRequest::Full);
        assert_eq!(r("items=0-1"), RangeRequest::Full);
        assert_eq!(r("bytes=+1-2"), RangeRequest::Full);
        assert_eq!(parse_range(None, 100), RangeRequest::Full);
        assert_eq!(
            parse_range(Some("bytes=0-"), 0),
            RangeRequest::Unsatisfiable
        );
    }
}
