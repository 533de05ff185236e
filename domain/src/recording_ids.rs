//! The two names a recording lives under on disk: its record id and the
//! names of its playback formats. Both come from untrusted input (archive
//! entries, metadata.xml, request paths) and become path segments, so they
//! are parsed here once and trusted afterwards.

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Longest format name accepted.
pub const MAX_FORMAT_LEN: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// Not `<40 lower-case hex>-<13 digits>`.
    #[error("`{0}` is not a BBB record id (expected 40 lower-case hex digits, `-`, 13 digits)")]
    InvalidRecordId(String),
    /// Empty, too long, or characters other than letters, digits, `_`, `-`.
    #[error("`{0}` is not a playback format name (1-64 letters, digits, `_` or `-`)")]
    InvalidFormat(String),
}

/// Shortens untrusted text for an error message.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// A BBB record id: `sha1hex(meetingID) + "-" + createTimeMillis`, which is
/// also the internal meeting id. Safe to use as a path segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(String);

impl RecordId {
    /// Parses `[0-9a-f]{40}-[0-9]{13}`.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let bytes = text.as_bytes();
        let ok = bytes.len() == 54
            && bytes[..40]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            && bytes[40] == b'-'
            && bytes[41..].iter().all(u8::is_ascii_digit);
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(IdError::InvalidRecordId(shorten(text)))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex SHA-1 of the external meeting id (the part before `-`).
    pub fn meeting_hash(&self) -> &str {
        &self.0[..40]
    }

    /// The meeting's create time in milliseconds since the epoch (the part
    /// after `-`).
    pub fn created_ms(&self) -> u64 {
        // 13 ASCII digits always fit in a u64.
        self.0[41..].parse().unwrap_or(0)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RecordId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl AsRef<str> for RecordId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A playback format name (`presentation`, `video`, `podcast`, ...): 1-64
/// ASCII letters, digits, `_` or `-`, so always a safe path segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FormatName(String);

impl FormatName {
    /// Parses a format name.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let ok = !text.is_empty()
            && text.len() <= MAX_FORMAT_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(IdError::InvalidFormat(shorten(text)))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FormatName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for FormatName {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl AsRef<str> for FormatName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "834c2bfbc2e5c8eb1ad9ac3d4cda2b7bf0e5c1a2-1741369843904";

    #[test]
    fn record_id_accepts_bbb_shape() {
        let id = RecordId::parse(ID).unwrap();
        assert_eq!(id.as_str(), ID);
        assert_eq!(id.meeting_hash(), &ID[..40]);
        assert_eq!(id.created_ms(), 1_741_369_843_904);
        assert_eq!(id.to_string(), ID);
    }

    #[test]
    fn record_id_refuses_other_shapes() {
        for bad in [
            "",
            "..",
            &ID[..53],
            &format!("{ID}0"),
            &ID.to_uppercase(),
            &ID.replace('-', "_"),
            &format!("{}/{}", &ID[..20], &ID[21..]),
            "834c2bfbc2e5c8eb1ad9ac3d4cda2b7bf0e5c1a2-17413698439０4",
        ] {
            assert!(RecordId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn format_names() {
        for good in ["presentation", "video", "screenshare_2", "a-b", "X"] {
            assert_eq!(FormatName::parse(good).unwrap().as_str(), good);
        }
        let long = "a".repeat(65);
        for bad in ["", ".", "..", "a/b", "a b", "é", "a.b", long.as_str()] {
            assert!(FormatName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn errors_shorten_untrusted_text() {
        let long = "x".repeat(1000) + "\n";
        let message = RecordId::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 250, "{message}");
        assert!(!message.contains('\n'));
    }
}
