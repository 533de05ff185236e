//! A recording's metadata.xml (from archives servers send): parsed within
//! its caps; every playback link and image it yields is handed out only on
//! Switchboard's own public URL.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_recordings::metadata::{parse, playback_url, rebase_url};

const BASE: &str = "https://lb.example.org/prefix";

fuzz_target!(|data: &[u8]| {
    let Ok(metadata) = parse(data) else {
        return;
    };
    let url = playback_url(&metadata.playback.link, BASE, "presentation", "x");
    assert!(url.starts_with("https://lb.example.org/prefix/"), "{url}");
    for image in &metadata.playback.images {
        if let Ok(url) = rebase_url(&image.url, BASE) {
            assert!(url.starts_with("https://lb.example.org/prefix/"), "{url}");
        }
    }
});
