//! The BBB API's query string: the checksum is cut out as BBB does, checked
//! against a secret, and the rest parsed. Properties: nothing panics; a
//! parsed query written back parses to the same parameters; a query signed
//! here verifies.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign, split_checksum, verify};
use switchboard_domain::bbb::params::{Params, strip_control_chars};

const SECRET: &str = "fuzzing-secret-0123456789";

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let (rest, checksum) = split_checksum(raw);
    let secrets = [SECRET.to_owned()];
    if let Some(checksum) = checksum {
        let _ = verify("create", &rest, checksum, &secrets, &ChecksumAlgorithm::ALL);
    }
    let signed = sign(ChecksumAlgorithm::Sha256, "create", &rest, SECRET);
    assert!(verify("create", &rest, &signed, &secrets, &ChecksumAlgorithm::ALL));
    if let Ok(params) = Params::parse(&rest) {
        let again = Params::parse(&params.to_query()).expect("a written query parses");
        assert_eq!(
            params.iter().collect::<Vec<_>>(),
            again.iter().collect::<Vec<_>>()
        );
        for (_, value) in params.iter() {
            let clean = strip_control_chars(value);
            assert!(!clean.chars().any(|c| c.is_control() && c != '\t' && c != '\n' && c != '\r'));
        }
    }
});
