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

#[cfg(test)]
mod tests {
    use super::*;

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
