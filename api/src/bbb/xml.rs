//! Writing BBB's XML answers: `<response>` documents without a declaration,
//! served with HTTP 200 and `Content-Type: text/xml`.

use poem::Response;
use poem::http::{StatusCode, header};

pub use switchboard_domain::bbb::xml_write::{XmlWriter, escape};

/// An XML answer as BBB sends it.
pub fn xml_response(body: impl Into<poem::Body>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .body(body)
}

/// Pieces a large shared answer is handed to the server in.
const PIECE: usize = 64 * 1024;

/// An XML answer shared between requests (a cached getMeetings of
/// thousands of meetings), handed over in 64 KiB pieces of the same
/// buffer, so that an HTTP connection that copies what it writes into
/// its own buffer never copies the whole answer at once. The length is
/// still sent.
pub fn shared_xml_response(body: bytes::Bytes) -> Response {
    let length = body.len();
    let pieces = (0..length)
        .step_by(PIECE)
        .map(move |start| Ok::<_, std::io::Error>(body.slice(start..(start + PIECE).min(length))));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .header(header::CONTENT_LENGTH, length)
        .body(poem::Body::from_bytes_stream(futures::stream::iter(pieces)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shared_answer_goes_out_whole_in_pieces_with_its_length() {
        let body = bytes::Bytes::from(
            (0..200_000u32)
                .map(|n| (b'a' + (n % 26) as u8) as char)
                .collect::<String>(),
        );
        let response = shared_xml_response(body.clone());
        assert_eq!(
            response.headers().get(header::CONTENT_LENGTH).unwrap(),
            "200000"
        );
        let sent = response.into_body().into_bytes().await.unwrap();
        assert_eq!(sent, body);
        let empty = shared_xml_response(bytes::Bytes::new());
        assert_eq!(empty.headers().get(header::CONTENT_LENGTH).unwrap(), "0");
        assert!(empty.into_body().into_bytes().await.unwrap().is_empty());
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn writes_response_documents() {
        let mut xml = XmlWriter::response("SUCCESS");
        xml.text_element("running", "true");
        assert_eq!(
            xml.finish(),
            "<response><returncode>SUCCESS</returncode><running>true</running></response>"
        );
    }
}
