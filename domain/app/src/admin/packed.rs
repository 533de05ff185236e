//! The pool's history snapshots as stored: JSON, gzip-compressed and in
//! base64 behind a marker, written and read as a stream.
//!
//! With 10,000 running meetings a snapshot's JSON is about 4 MB. Kept as
//! text it was made in one growing buffer (up to twice its length) and then
//! copied by each layer down to the database, about 25 MB at once every
//! few thousand events (issue 22's memory target). Compressed while it is
//! serialized, the JSON is never held whole: the stored text is a tenth of
//! its size. Snapshots kept as plain JSON before are still read.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a packed state starts with (JSON never does).
const MARKER: &str = "gz64:";

/// `value` as JSON, compressed, in base64 behind [`MARKER`].
pub(super) fn pack<T: Serialize>(value: &T) -> Result<String, std::io::Error> {
    // Buffered: serde_json writes each token on its own, and each write
    // straight into the encoder would be a call into the compressor.
    let mut writer = std::io::BufWriter::with_capacity(
        64 * 1024,
        GzEncoder::new(Vec::new(), Compression::fast()),
    );
    serde_json::to_writer(&mut writer, value)?;
    let compressed = writer
        .into_inner()
        .map_err(|err| err.into_error())?
        .finish()?;
    let mut state = String::with_capacity(MARKER.len() + compressed.len().div_ceil(3) * 4);
    state.push_str(MARKER);
    BASE64.encode_string(&compressed, &mut state);
    Ok(state)
}

/// A state [`pack`] wrote, or one kept as plain JSON; `None` when it cannot
/// be read.
pub(super) fn unpack<T: DeserializeOwned>(state: &str) -> Option<T> {
    match state.strip_prefix(MARKER) {
        Some(encoded) => {
            let compressed = BASE64.decode(encoded).ok()?;
            let json = std::io::BufReader::new(GzDecoder::new(compressed.as_slice()));
            serde_json::from_reader(json).ok()
        }
        None => serde_json::from_str(state).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type Fold = BTreeMap<String, BTreeMap<String, String>>;

    /// Shaped like the pool's fold: many records with the same fields.
    fn fold() -> Fold {
        (0..2_000)
            .map(|n| {
                let record = [
                    (
                        "internal_id",
                        format!("{n:040x}-{}", 1_700_000_000_000u64 + n),
                    ),
                    ("server_id", format!("server-{}", n % 10)),
                    ("state", "running".to_owned()),
                    ("voice_bridge", format!("{}", 70_000 + n)),
                ]
                .into_iter()
                .map(|(field, value)| (field.to_owned(), value))
                .collect();
                (format!("meeting/default/room-{n}"), record)
            })
            .collect()
    }

    #[test]
    fn a_packed_state_reads_back_as_it_was_and_is_much_smaller_than_its_json() {
        let json = serde_json::to_string(&fold()).unwrap();
        let packed = pack(&fold()).unwrap();
        assert!(packed.starts_with(MARKER));
        assert!(
            packed.len() * 3 < json.len(),
            "{} packed vs {} JSON",
            packed.len(),
            json.len()
        );
        assert_eq!(unpack::<Fold>(&packed), Some(fold()));
    }

    #[test]
    fn a_state_kept_as_plain_json_is_still_read() {
        let json = serde_json::to_string(&fold()).unwrap();
        assert_eq!(unpack::<Fold>(&json), Some(fold()));
    }

    /// The compressed bytes of a packed state, and a state made of others.
    fn compressed_of(packed: &str) -> Vec<u8> {
        BASE64.decode(&packed[MARKER.len()..]).unwrap()
    }
    fn packed_from(compressed: &[u8]) -> String {
        format!("{MARKER}{}", BASE64.encode(compressed))
    }

    #[test]
    fn a_damaged_state_is_not_read() {
        let packed = pack(&fold()).unwrap();
        let compressed = compressed_of(&packed);
        assert_eq!(unpack::<Fold>(&packed_from(&compressed)), Some(fold()));
        // Cut short: the gzip stream ends early.
        let cut = packed_from(&compressed[..compressed.len() / 2]);
        assert_eq!(unpack::<Fold>(&cut), None);
        // One byte changed in the middle: the stream or its CRC is wrong.
        let mut flipped = compressed.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x55;
        assert_eq!(unpack::<Fold>(&packed_from(&flipped)), None);
        assert_eq!(unpack::<u32>("gz64:not base64!"), None);
        assert_eq!(unpack::<u32>("{"), None);
    }
}
