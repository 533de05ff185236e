//! Writing BBB's XML answers: `<response>` documents without a declaration,
//! served with HTTP 200 and `Content-Type: text/xml`.

use poem::Response;
use poem::http::{StatusCode, header};
use switchboard_app::meetings::get_meetings::MeetingsAnswer;

pub use switchboard_domain::bbb::xml_write::{XmlWriter, escape};

/// An XML answer as BBB sends it.
pub fn xml_response(body: impl Into<poem::Body>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .body(body)
}

/// How much of a large shared answer is handed to the server at once.
const PIECE: usize = 64 * 1024;

/// An XML answer shared between requests (a cached getMeetings of
/// thousands of meetings), kept as many small pieces: each request hands
/// them to the server gathered into buffers of at most 64 KiB, made as the
/// connection takes them (a slow connection queues a few), so no request
/// copies the whole answer at once. The length is still sent.
pub fn shared_xml_response(answer: MeetingsAnswer) -> Response {
    let length = answer.len();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .header(header::CONTENT_LENGTH, length)
        .body(poem::Body::from_bytes_stream(futures::stream::iter(
            Gathered { answer, next: 0 }.map(Ok::<_, std::io::Error>),
        )))
}

/// An answer's pieces gathered, in order, into buffers of at most
/// [`PIECE`] bytes (a piece that large on its own goes as it is).
struct Gathered {
    answer: MeetingsAnswer,
    next: usize,
}

impl Iterator for Gathered {
    type Item = bytes::Bytes;

    fn next(&mut self) -> Option<bytes::Bytes> {
        let pieces = &self.answer.pieces()[self.next..];
        let first = pieces.first()?;
        // As many pieces as fit in one buffer (at least one).
        let mut size = first.len();
        let mut taken = 1;
        for piece in &pieces[1..] {
            if size + piece.len() > PIECE {
                break;
            }
            size += piece.len();
            taken += 1;
        }
        self.next += taken;
        if taken == 1 {
            return Some(first.clone());
        }
        let mut gathered = bytes::BytesMut::with_capacity(size);
        for piece in &pieces[..taken] {
            gathered.extend_from_slice(piece);
        }
        Some(gathered.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shared_answer_goes_out_whole_in_gathered_pieces_with_its_length() {
        let text: String = (0..200_000u32)
            .map(|n| (b'a' + (n % 26) as u8) as char)
            .collect();
        // Small pieces, one larger than a buffer, and an empty one.
        let mut pieces: Vec<bytes::Bytes> = text.as_bytes()[..100_000]
            .chunks(700)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        pieces.push(bytes::Bytes::new());
        pieces.push(bytes::Bytes::copy_from_slice(&text.as_bytes()[100_000..]));
        let answer = MeetingsAnswer::of(pieces);
        let sent: Vec<bytes::Bytes> = Gathered {
            answer: answer.clone(),
            next: 0,
        }
        .collect();
        assert!(
            sent.iter()
                .all(|piece| piece.len() <= PIECE || piece.len() == 100_000)
        );
        assert!(sent.len() < 10, "pieces were not gathered: {}", sent.len());
        let response = shared_xml_response(answer);
        assert_eq!(
            response.headers().get(header::CONTENT_LENGTH).unwrap(),
            "200000"
        );
        let body = response.into_body().into_bytes().await.unwrap();
        assert_eq!(body, text.as_bytes());
        let empty = shared_xml_response(MeetingsAnswer::of(Vec::new()));
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
