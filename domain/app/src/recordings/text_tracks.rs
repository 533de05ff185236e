//! Caption and subtitle tracks of recordings (getRecordingTextTracks,
//! putRecordingTextTrack), stored as WebVTT under
//! `<dir>/captions/<recordID>/<kind>_<lang>.vtt` with a `tracks.json` index,
//! and served at `/captions/<recordID>/<kind>_<lang>.vtt` to whoever may
//! play the recording.

use super::RecordingService;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use switchboard_domain::recording_ids::RecordId;

/// The index file of a recording's tracks.
const INDEX: &str = "tracks.json";

/// One text track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextTrack {
    /// `subtitles` or `captions`.
    pub kind: String,
    /// Language tag (`en-US`).
    pub lang: String,
    /// Label shown in the player.
    pub label: String,
    /// Where it came from (`upload`).
    pub source: String,
}

impl TextTrack {
    /// Its file name.
    pub fn file_name(&self) -> String {
        format!("{}_{}.vtt", self.kind, self.lang)
    }
}

/// Why a track was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// The kind is not `subtitles` or `captions`.
    #[error("invalidKind")]
    InvalidKind,
    /// The language tag is not usable.
    #[error("invalidLang")]
    InvalidLang,
    /// The file is empty or not text.
    #[error("empty_uploaded_text_track")]
    Empty,
    /// Writing failed.
    #[error("upload_text_track_failed: {0}")]
    Io(String),
}

/// Checks a language tag: letters, digits and `-`, 2-35 characters.
pub fn valid_lang(lang: &str) -> bool {
    (2..=35).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && lang.as_bytes()[0].is_ascii_alphabetic()
}

fn dir_of(service: &RecordingService, id: &RecordId) -> PathBuf {
    service.settings.dir.join("captions").join(id.as_str())
}

/// Converts SRT to WebVTT (WebVTT is kept as it is).
pub fn to_webvtt(text: &str) -> String {
    let text = text.trim_start_matches('\u{feff}');
    if text.starts_with("WEBVTT") {
        return text.to_owned();
    }
    let mut out = String::from("WEBVTT\n\n");
    for line in text.lines() {
        if line.contains("-->") {
            out.push_str(&line.replace(',', "."));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The tracks of a recording.
pub async fn list(service: &RecordingService, id: &RecordId) -> Vec<TextTrack> {
    let path = dir_of(service, id).join(INDEX);
    match tokio::fs::read(&path).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Stores a track (replacing one of the same kind and language).
pub async fn put(
    service: &RecordingService,
    id: &RecordId,
    track: TextTrack,
    content: &[u8],
) -> Result<(), TrackError> {
    if !matches!(track.kind.as_str(), "subtitles" | "captions") {
        return Err(TrackError::InvalidKind);
    }
    if !valid_lang(&track.lang) {
        return Err(TrackError::InvalidLang);
    }
    let text = std::str::from_utf8(content).map_err(|_| TrackError::Empty)?;
    if text.trim().is_empty() {
        return Err(TrackError::Empty);
    }
    let dir = dir_of(service, id);
    let io = |err: std::io::Error| TrackError::Io(err.to_string());
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let file = dir.join(track.file_name());
    let temp = dir.join(format!(".{}.tmp", track.file_name()));
    tokio::fs::write(&temp, to_webvtt(text)).await.map_err(io)?;
    tokio::fs::rename(&temp, &file).await.map_err(io)?;
    let mut tracks = list(service, id).await;
    tracks.retain(|t| !(t.kind == track.kind && t.lang == track.lang));
    tracks.push(track);
    let index = serde_json::to_vec_pretty(&tracks).map_err(|e| TrackError::Io(e.to_string()))?;
    let temp = dir.join(".tracks.json.tmp");
    tokio::fs::write(&temp, index).await.map_err(io)?;
    tokio::fs::rename(&temp, dir.join(INDEX)).await.map_err(io)
}

/// Removes every track of a recording (when it is deleted).
pub async fn delete_all(service: &RecordingService, record_id: &str) {
    if let Ok(id) = RecordId::parse(record_id) {
        let dir = dir_of(service, &id);
        if let Err(err) = tokio::fs::remove_dir_all(&dir).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(record_id, error = %err, "cannot remove a recording's text tracks");
        }
    }
}

/// The file of a track, if it exists (`name` is `<kind>_<lang>.vtt`).
pub async fn file(service: &RecordingService, id: &RecordId, name: &str) -> Option<PathBuf> {
    list(service, id)
        .await
        .into_iter()
        .find(|track| track.file_name() == name)
        .map(|track| dir_of(service, id).join(track.file_name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_becomes_webvtt() {
        let srt = "1\n00:00:01,000 --> 00:00:02,500\nHello, world\n";
        assert_eq!(
            to_webvtt(srt),
            "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nHello, world\n"
        );
        assert_eq!(to_webvtt("WEBVTT\n\nx"), "WEBVTT\n\nx");
    }

    #[test]
    fn language_tags() {
        assert!(valid_lang("en-US"));
        assert!(!valid_lang("../x"));
        assert!(!valid_lang("e"));
        assert!(!valid_lang("1en"));
    }
}
