//! BBB API checksums: `hex(H(callName + rawQueryWithoutChecksum + secret))`.
//!
//! The query is used raw, byte for byte as received. The checksum parameter is
//! removed by text replacement exactly as BBB does (`&checksum=X`, then
//! `checksum=X&`, then `checksum=X`), so it may stand anywhere in the query. The
//! hash algorithm is chosen by the length of the hex digest and the comparison is
//! case-insensitive and constant-time.

use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// A hash algorithm BBB accepts for checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgorithm {
    /// SHA-1, 40 hex digits. Every client library we know signs with it.
    Sha1,
    /// SHA-256, 64 hex digits.
    Sha256,
    /// SHA-384, 96 hex digits.
    Sha384,
    /// SHA-512, 128 hex digits.
    Sha512,
}

impl ChecksumAlgorithm {
    /// Every algorithm, the default allowed set.
    pub const ALL: [ChecksumAlgorithm; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// The algorithm whose hex digest has this many characters.
    pub fn from_hex_len(len: usize) -> Option<Self> {
        match len {
            40 => Some(Self::Sha1),
            64 => Some(Self::Sha256),
            96 => Some(Self::Sha384),
            128 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Parses `sha1`, `sha256`, `sha384` or `sha512` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The lower-case name, as accepted by [`ChecksumAlgorithm::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Raw digest of the concatenated parts (in the first bytes of a
    /// buffer the largest digest fits; its length is returned beside it).
    fn digest(self, parts: &[&[u8]]) -> ([u8; MAX_DIGEST_BYTES], usize) {
        fn run<D: Digest>(parts: &[&[u8]]) -> ([u8; MAX_DIGEST_BYTES], usize) {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            let digest = hasher.finalize();
            let mut out = [0u8; MAX_DIGEST_BYTES];
            out[..digest.len()].copy_from_slice(&digest);
            (out, digest.len())
        }
        match self {
            Self::Sha1 => run::<Sha1>(parts),
            Self::Sha256 => run::<Sha256>(parts),
            Self::Sha384 => run::<Sha384>(parts),
            Self::Sha512 => run::<Sha512>(parts),
        }
    }
}

/// The bytes of the largest digest (SHA-512).
const MAX_DIGEST_BYTES: usize = 64;

/// Removes the checksum parameter from a raw query the way BBB does and returns
/// the rest together with the checksum value (if there was one).
///
/// BBB takes `V`, the value of the first `checksum` parameter, then replaces
/// every `&checksum=V`, then every `checksum=V&`, then every `checksum=V`
/// (Java's `String.replace`). When `checksum=` occurs only once, that is
/// cutting out the one parameter, which is what nearly every request needs.
pub fn split_checksum(raw_query: &str) -> (String, Option<&str>) {
    const KEY: &str = "checksum=";
    let mut start = 0;
    let mut found = None;
    for piece in raw_query.split('&') {
        if piece.starts_with(KEY) {
            found = Some((start, start + piece.len()));
            break;
        }
        start += piece.len() + 1;
    }
    let Some((start, end)) = found else {
        return (raw_query.to_owned(), None);
    };
    let value = &raw_query[start + KEY.len()..end];
    let elsewhere = raw_query[..start].contains(KEY) || raw_query[end..].contains(KEY);
    if elsewhere {
        let rest = raw_query
            .replace(&format!("&{KEY}{value}"), "")
            .replace(&format!("{KEY}{value}&"), "")
            .replace(&format!("{KEY}{value}"), "");
        return (rest, Some(value));
    }
    let (from, to) = if start > 0 {
        (start - 1, end)
    } else if raw_query.as_bytes().get(end) == Some(&b'&') {
        (0, end + 1)
    } else {
        (0, end)
    };
    let mut rest = String::with_capacity(raw_query.len() - (to - from));
    rest.push_str(&raw_query[..from]);
    rest.push_str(&raw_query[to..]);
    (rest, Some(value))
}

/// Computes the hex checksum of `call + query + secret`.
pub fn sign(algorithm: ChecksumAlgorithm, call: &str, query: &str, secret: &str) -> String {
    let (digest, len) = algorithm.digest(&[call.as_bytes(), query.as_bytes(), secret.as_bytes()]);
    // RustCrypto's constant-time hex: a table-free byte loop, where the
    // `hex` crate built the string a `char` at a time (about 2,700
    // instructions for a SHA-256 checksum under callgrind, issue 22).
    base16ct::lower::encode_string(&digest[..len])
}

/// Checks a checksum against every secret, in constant time per comparison.
pub fn verify(
    call: &str,
    signed_query: &str,
    checksum: &str,
    secrets: &[String],
    allowed: &[ChecksumAlgorithm],
) -> bool {
    verify_which(call, signed_query, checksum, secrets, allowed).is_some()
}

/// As [`verify`], telling which secret (its index) made the checksum. Every
/// secret is compared, in constant time, whichever matches.
pub fn verify_which(
    call: &str,
    signed_query: &str,
    checksum: &str,
    secrets: &[String],
    allowed: &[ChecksumAlgorithm],
) -> Option<usize> {
    let algorithm = ChecksumAlgorithm::from_hex_len(checksum.len())?;
    if !allowed.contains(&algorithm) {
        return None;
    }
    // Either case, as before (decoded in constant time too).
    let mut given = [0u8; MAX_DIGEST_BYTES];
    let given = base16ct::mixed::decode(checksum, &mut given).ok()?;
    let mut matched = subtle::Choice::from(0u8);
    let mut which = 0u64;
    for (index, secret) in secrets.iter().enumerate() {
        let (expected, len) =
            algorithm.digest(&[call.as_bytes(), signed_query.as_bytes(), secret.as_bytes()]);
        let this = expected[..len].ct_eq(given);
        // The first match wins; later ones leave `which` alone.
        let first = this & !matched;
        which.conditional_assign(&(index as u64), first);
        matched |= this;
    }
    bool::from(matched).then_some(which as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8cd8ef52e8e101574e400365b55e11a6";

    #[test]
    fn known_sha1_vector_from_bbb_docs() {
        // Example from the BBB API documentation.
        let query = "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444";
        assert_eq!(
            sign(
                ChecksumAlgorithm::Sha1,
                "create",
                query,
                "639259d4-9dd8-4b25-bf01-95f9567eaf4b"
            ),
            "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17"
        );
    }

    #[test]
    fn every_algorithm_signs_its_standard_vector_in_lower_case_hex() {
        // FIPS 180 "abc" vectors, as call "a", query "b" and secret "c".
        let cases = [
            (
                ChecksumAlgorithm::Sha1,
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                ChecksumAlgorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                ChecksumAlgorithm::Sha384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                ChecksumAlgorithm::Sha512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (algorithm, expected) in cases {
            assert_eq!(sign(algorithm, "a", "b", "c"), expected, "{algorithm:?}");
        }
    }

    #[test]
    fn a_checksum_that_is_not_hex_or_of_no_digest_length_is_refused() {
        let secrets = vec!["c".to_owned()];
        let all = [ChecksumAlgorithm::Sha1, ChecksumAlgorithm::Sha256];
        let good = sign(ChecksumAlgorithm::Sha1, "a", "b", "c");
        assert_eq!(verify_which("a", "b", &good, &secrets, &all), Some(0));
        let not_hex = format!("{}zz", &good[..38]);
        assert_eq!(verify_which("a", "b", &not_hex, &secrets, &all), None);
        let odd_length = format!("{good}{}", "0".repeat(129));
        assert_eq!(verify_which("a", "b", &odd_length, &secrets, &all), None);
    }

    #[test]
    fn checksum_is_stripped_wherever_it_stands() {
        assert_eq!(
            split_checksum("a=1&checksum=ff&b=2"),
            ("a=1&b=2".to_owned(), Some("ff"))
        );
        assert_eq!(
            split_checksum("checksum=ff&a=1"),
            ("a=1".to_owned(), Some("ff"))
        );
        assert_eq!(split_checksum("checksum=ff"), (String::new(), Some("ff")));
        assert_eq!(split_checksum("&checksum=ff"), (String::new(), Some("ff")));
        assert_eq!(split_checksum("a=1"), ("a=1".to_owned(), None));
        assert_eq!(
            split_checksum("a=1&checksum=ff"),
            ("a=1".to_owned(), Some("ff"))
        );
        assert_eq!(
            split_checksum("xchecksum=1&b=2"),
            ("xchecksum=1&b=2".to_owned(), None)
        );
    }

    #[test]
    fn repeated_checksums_follow_java_replace_all() {
        // "&checksum=ab" everywhere, then "checksum=ab&", then "checksum=ab".
        assert_eq!(
            split_checksum("checksum=ab&x=1&checksum=abc"),
            ("x=1c".to_owned(), Some("ab"))
        );
        assert_eq!(
            split_checksum("a=1&checksum=ff&b=2&checksum=ff"),
            ("a=1&b=2".to_owned(), Some("ff"))
        );
    }

    #[test]
    fn every_algorithm_is_recognised_by_length_and_case_insensitive() {
        let secrets = vec![SECRET.to_owned()];
        for algorithm in ChecksumAlgorithm::ALL {
            let sum = sign(algorithm, "join", "meetingID=x", SECRET);
            assert_eq!(ChecksumAlgorithm::from_hex_len(sum.len()), Some(algorithm));
            assert!(verify(
                "join",
                "meetingID=x",
                &sum.to_uppercase(),
                &secrets,
                &ChecksumAlgorithm::ALL
            ));
        }
    }

    #[test]
    fn disallowed_algorithm_wrong_secret_and_garbage_fail() {
        let secrets = vec![SECRET.to_owned()];
        let sha1 = sign(ChecksumAlgorithm::Sha1, "join", "a=1", SECRET);
        assert!(!verify(
            "join",
            "a=1",
            &sha1,
            &secrets,
            &[ChecksumAlgorithm::Sha256]
        ));
        assert!(!verify(
            "join",
            "a=1",
            &sha1,
            &["other".to_owned()],
            &ChecksumAlgorithm::ALL
        ));
        assert!(!verify(
            "join",
            "a=2",
            &sha1,
            &secrets,
            &ChecksumAlgorithm::ALL
        ));
        assert!(!verify(
            "join",
            "a=1",
            &"zz".repeat(20),
            &secrets,
            &ChecksumAlgorithm::ALL
        ));
        assert!(!verify(
            "join",
            "a=1",
            "abc",
            &secrets,
            &ChecksumAlgorithm::ALL
        ));
    }

    #[test]
    fn any_of_several_secrets_is_accepted() {
        let secrets = vec!["old".to_owned(), SECRET.to_owned()];
        let sum = sign(ChecksumAlgorithm::Sha256, "end", "meetingID=m", SECRET);
        assert!(verify(
            "end",
            "meetingID=m",
            &sum,
            &secrets,
            &ChecksumAlgorithm::ALL
        ));
    }

    #[test]
    fn the_secret_that_signed_is_named() {
        let secrets = vec!["first".to_owned(), SECRET.to_owned(), "third".to_owned()];
        for (index, secret) in secrets.iter().enumerate() {
            let sum = sign(ChecksumAlgorithm::Sha1, "create", "meetingID=m", secret);
            assert_eq!(
                verify_which(
                    "create",
                    "meetingID=m",
                    &sum,
                    &secrets,
                    &ChecksumAlgorithm::ALL
                ),
                Some(index)
            );
        }
        let sum = sign(ChecksumAlgorithm::Sha1, "create", "meetingID=m", "nobody");
        assert_eq!(
            verify_which(
                "create",
                "meetingID=m",
                &sum,
                &secrets,
                &ChecksumAlgorithm::ALL
            ),
            None
        );
    }
}
