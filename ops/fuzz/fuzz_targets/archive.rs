//! A recording archive (a tar from a server, or anyone with a captured
//! upload URL): extracted into a staging folder with small caps. Nothing
//! panics and nothing is written outside the staging root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_recordings::archive::{ArchiveLimits, extract_reader};

fuzz_target!(|data: &[u8]| {
    let root = tempfile::tempdir().expect("temp dir");
    let staging = root.path().join("staging");
    let limits = ArchiveLimits {
        max_total_bytes: 1 << 20,
        max_entries: 200,
        max_file_bytes: 1 << 20,
    };
    let _ = extract_reader(std::io::Cursor::new(data), None, &staging, &limits);
    for entry in std::fs::read_dir(root.path()).expect("read root").flatten() {
        assert_eq!(entry.file_name(), "staging", "written outside staging");
    }
});
