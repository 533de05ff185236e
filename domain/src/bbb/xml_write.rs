//! Writing BBB's XML answers: `<response>` documents without a declaration.

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Builds a `<response>` document.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// Starts `<response><returncode>CODE</returncode>`.
    pub fn response(returncode: &str) -> Self {
        let mut out = String::with_capacity(256);
        out.push_str("<response><returncode>");
        out.push_str(returncode);
        out.push_str("</returncode>");
        Self { out }
    }

    /// Adds `<name>escaped text</name>`.
    pub fn text_element(&mut self, name: &str, text: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Adds already well-formed XML as it is.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    /// Closes the document.
    pub fn finish(mut self) -> String {
        self.out.push_str("</response>");
        self.out
    }
}
