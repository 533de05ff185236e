//! Query-string parameters as BBB sees them: `application/x-www-form-urlencoded`
//! pairs, decoded strictly (malformed percent-encoding and invalid UTF-8 are
//! errors, never silently replaced), in their original order.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use thiserror::Error;

/// Why a query string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamError {
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding in parameter `{0}`")]
    MalformedEncoding(String),
    /// Decoded bytes that are not UTF-8.
    #[error("parameter `{0}` is not valid UTF-8")]
    InvalidUtf8(String),
    /// The same parameter twice.
    #[error("parameter `{0}` was given more than once")]
    Duplicate(String),
}

/// Decoded parameters in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// Characters left unescaped by [`encode_component`]: RFC 3986 unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one key or value (unreserved characters stay as they are).
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Decodes one form-urlencoded component (`+` is a space).
pub fn decode_component(raw: &str) -> Result<String, ParamError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 3;
                    }
                    _ => return Err(ParamError::MalformedEncoding(shorten(raw))),
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ParamError::InvalidUtf8(shorten(raw)))
}

/// Cuts a raw value for use in an error message.
fn shorten(raw: &str) -> String {
    raw.chars().take(40).collect()
}

impl Params {
    /// Parses a raw query (without the leading `?`). Empty pieces (`a=1&&b=2`,
    /// a leading `&`) are skipped; a duplicate key is an error.
    pub fn parse(raw: &str) -> Result<Self, ParamError> {
        let mut params = Params::default();
        for piece in raw.split('&').filter(|piece| !piece.is_empty()) {
            let (raw_key, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
            let key = decode_component(raw_key)?;
            let value = decode_component(raw_value).map_err(|err| match err {
                ParamError::MalformedEncoding(_) => ParamError::MalformedEncoding(key.clone()),
                ParamError::InvalidUtf8(_) => ParamError::InvalidUtf8(key.clone()),
                other => other,
            })?;
            params.insert_new(key, value)?;
        }
        Ok(params)
    }

    /// Adds a parameter that must not be present yet.
    pub fn insert_new(&mut self, key: String, value: String) -> Result<(), ParamError> {
        if self.get(&key).is_some() {
            return Err(ParamError::Duplicate(key));
        }
        self.pairs.push((key, value));
        Ok(())
    }

    /// Merges another set in; a key present in both is an error.
    pub fn merge(&mut self, other: Params) -> Result<(), ParamError> {
        for (key, value) in other.pairs {
            self.insert_new(key, value)?;
        }
        Ok(())
    }

    /// The value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a parameter, `None` when absent or empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|value| !value.is_empty())
    }

    /// Sets a parameter, replacing an existing value in place.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((key.to_owned(), value)),
        }
    }

    /// Removes a parameter and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(index).1)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Encodes the pairs as a query string (no leading `?`).
    pub fn to_query(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.pairs {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&encode_component(key));
            out.push('=');
            out.push_str(&encode_component(value));
        }
        out
    }
}

impl FromIterator<(String, String)> for Params {
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        let mut params = Params::default();
        for (key, value) in iter {
            params.set(&key, value);
        }
        params
    }
}

/// Removes control characters (Unicode `Cc`), as BBB's
/// `ParamsUtil.stripControlChars` does to a meetingID before using it.
pub fn strip_control_chars(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        std::borrow::Cow::Owned(text.chars().filter(|c| !c.is_control()).collect())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_percent_and_unicode() {
        let params = Params::parse("fullName=J%C3%BCrgen+M%C3%BCller&meetingID=a%2Cb").unwrap();
        assert_eq!(params.get("fullName"), Some("Jürgen Müller"));
        assert_eq!(params.get("meetingID"), Some("a,b"));
    }

    #[test]
    fn skips_empty_pieces_and_keeps_valueless_keys() {
        let params = Params::parse("&a=1&&b&c=").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), Some(""));
        assert_eq!(params.non_empty("c"), None);
    }

    #[test]
    fn malformed_encoding_and_bad_utf8_and_duplicates_are_errors() {
        assert_eq!(
            Params::parse("name=%zz"),
            Err(ParamError::MalformedEncoding("name".into()))
        );
        assert_eq!(
            Params::parse("name=%4"),
            Err(ParamError::MalformedEncoding("name".into()))
        );
        assert_eq!(
            Params::parse("name=%ff"),
            Err(ParamError::InvalidUtf8("name".into()))
        );
        assert_eq!(
            Params::parse("a=1&a=2"),
            Err(ParamError::Duplicate("a".into()))
        );
    }

    #[test]
    fn encoding_round_trips() {
        let mut params = Params::default();
        params.set("name", "Physik & Chemie: 100% ✓");
        params.set("meta_bbb-origin", "Moodle");
        let query = params.to_query();
        assert_eq!(Params::parse(&query).unwrap(), params);
        assert!(!query.contains(' '));
    }
}
