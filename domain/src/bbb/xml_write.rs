//! Writing BBB's XML answers: `<response>` documents without an XML
//! declaration, every text escaped (characters XML 1.0 forbids dropped, so
//! the answer is always well-formed), element names checked. Used by the
//! facade and the simulator alike.

use std::fmt::Display;

/// Builds an XML document as a string.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// A writer with `<response><returncode>CODE</returncode>` already written.
    pub fn response(returncode: &str) -> Self {
        let mut writer = XmlWriter {
            out: String::with_capacity(512),
        };
        writer.open("response");
        writer.text("returncode", returncode);
        writer
    }

    /// Writes `<tag>`.
    pub fn open(&mut self, tag: &str) {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
    }

    /// Writes `</tag>`.
    pub fn close(&mut self, tag: &str) {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    /// Writes `<tag/>`.
    pub fn empty(&mut self, tag: &str) {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push_str("/>");
    }

    /// Writes `<tag>escaped text</tag>`.
    pub fn text(&mut self, tag: &str, text: &str) {
        self.open(tag);
        push_escaped(&mut self.out, text);
        self.close(tag);
    }

    /// Adds `<name>escaped text</name>` (as [`text`](Self::text)), chainable.
    pub fn text_element(&mut self, name: &str, text: &str) -> &mut Self {
        self.text(name, text);
        self
    }

    /// Adds already well-formed XML as it is, chainable.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    /// Writes `<tag>value</tag>` for numbers and booleans (nothing to escape).
    pub fn value(&mut self, tag: &str, value: impl Display) {
        use std::fmt::Write as _;
        self.open(tag);
        let _ = write!(self.out, "{value}");
        self.close(tag);
    }

    /// Writes `<wrapper><k>v</k>...</wrapper>`, skipping keys that are not valid
    /// XML element names (they cannot be rendered as BBB does).
    pub fn map(&mut self, wrapper: &str, pairs: &[(String, String)]) {
        self.open(wrapper);
        for (key, value) in pairs {
            if is_valid_name(key) {
                self.text(key, value);
            }
        }
        self.close(wrapper);
    }

    /// Closes `<response>` and returns the document.
    pub fn finish(mut self) -> String {
        self.close("response");
        self.out
    }
}

/// A FAILED answer with a message key and message.
pub fn error(key: &str, message: &str) -> String {
    let mut writer = XmlWriter::response("FAILED");
    writer.text("messageKey", key);
    writer.text("message", message);
    writer.finish()
}

/// A SUCCESS answer with a message key and message (both may be empty).
pub fn success(key: &str, message: &str) -> String {
    let mut writer = XmlWriter::response("SUCCESS");
    writer.text("messageKey", key);
    writer.text("message", message);
    writer.finish()
}

/// Appends `text` with `& < > " '` escaped. Characters XML 1.0 forbids
/// (control characters other than tab, newline and carriage return) are dropped.
pub fn push_escaped(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// Escapes text for element content and attribute values (borrowed when
/// nothing needs escaping or dropping).
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let clean = text.chars().all(|c| {
        !matches!(c, '&' | '<' | '>' | '"' | '\'')
            && (c as u32 >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
            && c != '\u{FFFE}'
            && c != '\u{FFFF}'
    });
    if clean {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    push_escaped(&mut out, text);
    std::borrow::Cow::Owned(out)
}

/// True when `name` can be used as an XML element name: an ASCII letter or `_`
/// followed by ASCII letters, digits, `-`, `_` or `.`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_forbidden_controls() {
        assert_eq!(
            escape("a<b>&\"c\"'d'\u{1}\te"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\te"
        );
        assert_eq!(escape("Jürgen ✓"), "Jürgen ✓");
    }

    #[test]
    fn element_names_are_checked() {
        assert!(is_valid_name("endcallbackurl"));
        assert!(is_valid_name("bbb-origin"));
        assert!(is_valid_name("_x.y"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("1abc"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a<b"));
    }

    #[test]
    fn error_and_success_documents() {
        assert_eq!(
            error("notFound", "x & y"),
            "<response><returncode>FAILED</returncode><messageKey>notFound</messageKey>\
             <message>x &amp; y</message></response>"
        );
        let mut writer = XmlWriter::response("SUCCESS");
        writer.value("running", true);
        writer.map(
            "metadata",
            &[
                ("ok".to_owned(), "1".to_owned()),
                ("bad key".to_owned(), "2".to_owned()),
            ],
        );
        writer.empty("meetings");
        assert_eq!(
            writer.finish(),
            "<response><returncode>SUCCESS</returncode><running>true</running>\
             <metadata><ok>1</ok></metadata><meetings/></response>"
        );
        assert_eq!(
            success("", ""),
            "<response><returncode>SUCCESS</returncode><messageKey></messageKey>\
             <message></message></response>"
        );
    }
}
