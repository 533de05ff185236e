//! BBB's `metadata.xml`, the one file every format directory of a recording
//! carries, parsed into [`RecordingMetadata`].
//!
//! The file comes from a backend or an uploaded archive, so it is untrusted:
//! its size, nesting and element count are capped, entities other than the
//! five predefined ones and character references are refused, and nothing
//! here panics on bad input.

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use switchboard_domain::recording_ids::{FormatName, IdError, RecordId, shorten};
use thiserror::Error;

/// Largest `metadata.xml` accepted, in bytes.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Most elements accepted in one file.
pub const MAX_ELEMENTS: usize = 20_000;
/// Most preview images kept per format.
pub const MAX_IMAGES: usize = 100;

/// The file name BBB gives the metadata of a format directory.
pub const METADATA_FILE: &str = "metadata.xml";

/// Why a metadata.xml was refused.
#[derive(Debug, Error)]
pub enum MetadataError {
    /// Bigger than the cap.
    #[error("metadata.xml is larger than {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("metadata.xml is not UTF-8 text")]
    NotUtf8,
    /// Not well-formed XML, or beyond the nesting/element caps.
    #[error("metadata.xml is not well-formed: {0}")]
    Xml(String),
    /// The root element is not `<recording>`.
    #[error("metadata.xml has root element <{0}>, expected <recording>")]
    WrongRoot(String),
    /// A required element or attribute is missing or empty.
    #[error("metadata.xml lacks {0}")]
    Missing(&'static str),
    /// A number field does not hold a number.
    #[error("metadata.xml field {field} is not a whole number: `{value}`")]
    InvalidNumber {
        /// Which field.
        field: &'static str,
        /// What it held (shortened).
        value: String,
    },
    /// A boolean field holds something other than true/false.
    #[error("metadata.xml field {field} is not true or false: `{value}`")]
    InvalidBool {
        /// Which field.
        field: &'static str,
        /// What it held (shortened).
        value: String,
    },
    /// The record id or the format name is malformed.
    #[error("metadata.xml: {0}")]
    InvalidId(#[from] IdError),
    /// A base URL for [`rebase_urls`] is not `http(s)://host[/prefix]`.
    #[error("`{0}` is not an http(s) base URL")]
    InvalidBaseUrl(String),
    /// A playback or image link is neither an http(s) URL nor a path
    /// (`javascript:`, `https:\\host`, whitespace or control characters).
    #[error("`{0}` is not an http(s) URL or a path")]
    UnsafeLink(String),
    /// The file could not be read.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The metadata disagrees with the directory it sits in.
    #[error("{path} describes {what} `{found}` but lies in the directory of `{expected}`")]
    Mismatch {
        /// The metadata file.
        path: PathBuf,
        /// `record id` or `format`.
        what: &'static str,
        /// What the directory says.
        expected: String,
        /// What the file says.
        found: String,
    },
}

/// A preview image (slide thumbnail) of a playback format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewImage {
    /// Absolute URL of the image.
    pub url: String,
    /// Width in pixels, if given.
    pub width: Option<u32>,
    /// Height in pixels, if given.
    pub height: Option<u32>,
    /// Alternative text, if given.
    pub alt: Option<String>,
}

/// The `<playback>` part: how to watch this format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackFormat {
    /// Format name (`presentation`, `video`, ...).
    pub format: FormatName,
    /// Playback URL as the backend wrote it.
    pub link: String,
    /// Processing time in milliseconds.
    pub processing_time_ms: Option<u64>,
    /// Length of the recording in milliseconds (the API's `length` is minutes).
    pub duration_ms: Option<u64>,
    /// Preview images, in document order.
    pub images: Vec<PreviewImage>,
}

/// What one format directory's metadata.xml says about a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingMetadata {
    /// `<id>`.
    pub record_id: RecordId,
    /// `<meeting id=..>`; the record id when absent.
    pub internal_meeting_id: String,
    /// The front-end's meeting id: `<meeting externalId=..>`, else `meta/meetingId`.
    pub meeting_id: String,
    /// `<meeting name=..>`, else `meta/meetingName`, else empty.
    pub name: String,
    /// `<meeting breakout=..>`, else `meta/isBreakout`, else false.
    pub is_breakout: bool,
    /// A breakout room's parent run (internal meeting id):
    /// `<breakout parentMeetingId=..>`, else `meta/parentMeetingId`.
    pub parent_meeting_id: Option<String>,
    /// A breakout room's number among its parent's rooms:
    /// `<breakout sequence=..>` (0 when absent).
    pub breakout_sequence: u32,
    /// The breakout rooms the meeting opened (their internal meeting ids):
    /// `<breakoutRooms><breakoutRoom>..`.
    pub breakout_rooms: Vec<String>,
    /// `<state>` (`published`, `unpublished`, ...); derived from `<published>` when absent.
    pub state: String,
    /// `<published>`; derived from `<state>` when absent.
    pub published: bool,
    /// `<start_time>` in ms; the record id's create time when absent.
    pub start_time_ms: u64,
    /// `<end_time>` in ms; the start time when absent.
    pub end_time_ms: u64,
    /// `<participants>`; 0 when absent.
    pub participants: u32,
    /// `<meta>` children other than meetingId, meetingName and isBreakout,
    /// names as BBB wrote them.
    pub metadata: BTreeMap<String, String>,
    /// `<playback>`.
    pub playback: PlaybackFormat,
}

/// A format directory `<format>/<recordID>/` with its parsed metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDir {
    /// The format (the directory's parent name).
    pub format: FormatName,
    /// The recording (the directory's name).
    pub record_id: RecordId,
    /// The directory.
    pub dir: PathBuf,
    /// Its metadata.xml.
    pub metadata: RecordingMetadata,
}

impl FormatDir {
    /// Reads `dir/metadata.xml` and checks that it describes `record_id` in
    /// `format`.
    pub fn load(
        dir: &Path,
        format: FormatName,
        record_id: RecordId,
    ) -> Result<Self, MetadataError> {
        let path = dir.join(METADATA_FILE);
        let metadata = read_metadata_file(&path)?;
        if metadata.record_id != record_id {
            return Err(MetadataError::Mismatch {
                path,
                what: "record id",
                expected: record_id.to_string(),
                found: metadata.record_id.to_string(),
            });
        }
        if metadata.playback.format != format {
            return Err(MetadataError::Mismatch {
                path,
                what: "format",
                expected: format.to_string(),
                found: metadata.playback.format.to_string(),
            });
        }
        Ok(Self {
            format,
            record_id,
            dir: dir.to_path_buf(),
            metadata,
        })
    }
}

/// Reads and parses a metadata.xml file, reading at most
/// [`MAX_METADATA_BYTES`] + 1 bytes. Symbolic links are not followed.
pub fn read_metadata_file(path: &Path) -> Result<RecordingMetadata, MetadataError> {
    let io = |source| MetadataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let kind = std::fs::symlink_metadata(path).map_err(io)?;
    if !kind.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_METADATA_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    parse(&bytes)
}

/// Parses the bytes of a metadata.xml.
pub fn parse(bytes: &[u8]) -> Result<RecordingMetadata, MetadataError> {
    if bytes.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge {
            limit: MAX_METADATA_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| MetadataError::NotUtf8)?;
    let root = parse_tree(text)?;
    if root.name != "recording" {
        return Err(MetadataError::WrongRoot(shorten(&root.name)));
    }
    from_tree(&root)
}

/// A parsed element: just what metadata.xml needs.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn path(&self, names: &[&str]) -> Option<&Node> {
        names.iter().try_fold(self, |node, name| node.child(name))
    }

    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

fn xml_err(e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Xml(shorten(&e.to_string()))
}

fn start_node(e: &BytesStart<'_>) -> Result<Node, MetadataError> {
    let mut node = Node {
        name: String::from_utf8_lossy(e.name().as_ref().as_bytes()).into_owned(),
        ..Node::default()
    };
    for attr in e.attributes() {
        let attr = attr.map_err(xml_err)?;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(xml_err)?;
        node.attrs
            .push((attr.key.as_ref().to_owned(), value.into_owned()));
    }
    Ok(node)
}

/// Builds the element tree without recursion, within the caps.
fn parse_tree(text: &str) -> Result<Node, MetadataError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    loop {
        let event = reader.read_event().map_err(xml_err)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(MetadataError::Xml("content after the root element".into()));
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(MetadataError::Xml(format!(
                        "more than {MAX_ELEMENTS} elements"
                    )));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(MetadataError::Xml(format!(
                        "elements nested deeper than {MAX_DEPTH}"
                    )));
                }
                let node = start_node(e)?;
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else {
                    close(&mut stack, &mut root, node);
                }
            }
            Event::End(_) => {
                // quick-xml checks that end tags match their start tags.
                let node = stack
                    .pop()
                    .ok_or_else(|| MetadataError::Xml("unexpected end tag".into()))?;
                close(&mut stack, &mut root, node);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(xml_err)? {
                    Some(c) => c.to_string(),
                    None => resolve_predefined_entity(&r)
                        .ok_or_else(|| {
                            MetadataError::Xml(format!("undefined entity &{};", shorten(&r)))
                        })?
                        .to_owned(),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(MetadataError::Xml(
            "unclosed elements at end of file".into(),
        ));
    }
    root.ok_or_else(|| MetadataError::Xml("no root element".into()))
}

fn close(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

fn number<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<T, MetadataError> {
    text.trim()
        .parse()
        .map_err(|_| MetadataError::InvalidNumber {
            field,
            value: shorten(text),
        })
}

fn boolean(field: &'static str, text: &str) -> Result<bool, MetadataError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(MetadataError::InvalidBool {
            field,
            value: shorten(text),
        }),
    }
}

fn from_tree(root: &Node) -> Result<RecordingMetadata, MetadataError> {
    let record_id = RecordId::parse(root.text_of("id").ok_or(MetadataError::Missing("<id>"))?)?;
    let meeting = root.child("meeting");
    let meta = root.child("meta");
    let meta_text = |name: &str| meta.and_then(|m| m.text_of(name));

    let internal_meeting_id = meeting
        .and_then(|m| m.attr("id"))
        .unwrap_or(record_id.as_str())
        .to_owned();
    let meeting_id = meeting
        .and_then(|m| m.attr("externalId"))
        .or_else(|| meta_text("meetingId"))
        .ok_or(MetadataError::Missing(
            "the meeting id (<meeting externalId> or <meta><meetingId>)",
        ))?
        .to_owned();
    let name = meeting
        .and_then(|m| m.attr("name"))
        .or_else(|| meta_text("meetingName"))
        .unwrap_or_default()
        .to_owned();
    let is_breakout = match meeting
        .and_then(|m| m.attr("breakout"))
        .or_else(|| meta_text("isBreakout"))
    {
        Some(text) => boolean("breakout", text)?,
        None => false,
    };
    let parent_meeting_id = root
        .child("breakout")
        .and_then(|b| b.attr("parentMeetingId"))
        .or_else(|| meta_text("parentMeetingId"))
        .map(str::trim)
        .filter(|id| !id.is_empty() && *id != "bbb-none")
        .map(str::to_owned);
    // An unreadable sequence is not worth refusing the recording over.
    let breakout_sequence = root
        .child("breakout")
        .and_then(|b| b.attr("sequence"))
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    let breakout_rooms = root
        .child("breakoutRooms")
        .map(|rooms| {
            rooms
                .children
                .iter()
                .filter(|room| room.name == "breakoutRoom")
                .map(|room| room.text.trim())
                .filter(|id| !id.is_empty() && id.len() <= 256)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();

    let published = root
        .text_of("published")
        .map(|t| boolean("published", t))
        .transpose()?;
    let state = root.text_of("state").map(str::to_owned);
    let (state, published) = match (state, published) {
        (Some(s), Some(p)) => (s, p),
        (Some(s), None) => {
            let p = s == "published";
            (s, p)
        }
        (None, Some(p)) => (if p { "published" } else { "unpublished" }.to_owned(), p),
        (None, None) => ("unpublished".to_owned(), false),
    };

    let start_time_ms = match root.text_of("start_time") {
        Some(t) => number("start_time", t)?,
        None => record_id.created_ms(),
    };
    let end_time_ms = match root.text_of("end_time") {
        Some(t) => number("end_time", t)?,
        None => start_time_ms,
    };
    let participants = match root.text_of("participants") {
        Some(t) => number("participants", t)?,
        None => 0,
    };

    let mut metadata = BTreeMap::new();
    if let Some(meta) = meta {
        for child in &meta.children {
            if matches!(
                child.name.as_str(),
                "meetingId" | "meetingName" | "isBreakout"
            ) {
                continue;
            }
            metadata.insert(child.name.clone(), child.text.trim().to_owned());
        }
    }

    let playback = root
        .child("playback")
        .ok_or(MetadataError::Missing("<playback>"))?;
    let format = FormatName::parse(
        playback
            .text_of("format")
            .ok_or(MetadataError::Missing("<playback><format>"))?,
    )?;
    let link = playback
        .text_of("link")
        .ok_or(MetadataError::Missing("<playback><link>"))?
        .to_owned();
    let processing_time_ms = playback
        .text_of("processing_time")
        .map(|t| number("processing_time", t))
        .transpose()?;
    let duration_ms = playback
        .text_of("duration")
        .map(|t| number("duration", t))
        .transpose()?;
    let mut images = Vec::new();
    if let Some(list) = playback.path(&["extensions", "preview", "images"]) {
        for image in list.children.iter().filter(|c| c.name == "image") {
            let url = image.text.trim();
            if url.is_empty() || images.len() >= MAX_IMAGES {
                continue;
            }
            images.push(PreviewImage {
                url: url.to_owned(),
                width: image
                    .attr("width")
                    .map(|t| number("image width", t))
                    .transpose()?,
                height: image
                    .attr("height")
                    .map(|t| number("image height", t))
                    .transpose()?,
                alt: image.attr("alt").map(str::to_owned),
            });
        }
    }

    Ok(RecordingMetadata {
        record_id,
        internal_meeting_id,
        meeting_id,
        name,
        is_breakout,
        parent_meeting_id,
        breakout_sequence,
        breakout_rooms,
        state,
        published,
        start_time_ms,
        end_time_ms,
        participants,
        metadata,
        playback: PlaybackFormat {
            format,
            link,
            processing_time_ms,
            duration_ms,
            images,
        },
    })
}

/// Moves an absolute URL onto `base`, keeping its path, query and fragment:
/// `https://bbb1.example.org/playback/presentation/2.3/ID` with base
/// `https://lb.example.org` gives `https://lb.example.org/playback/presentation/2.3/ID`.
/// A base with a path prefix (`https://example.org/lb/`) puts the prefix in
/// front. A URL that is only a path (`/playback/...`) is put onto the base too.
pub fn rebase_url(url: &str, base: &str) -> Result<String, MetadataError> {
    let base = base.trim().trim_end_matches('/');
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
        .filter(|host| !host.is_empty() && !host.starts_with('/'))
        .filter(|_| !base.contains(['?', '#', ' ']));
    if rest.is_none() {
        return Err(MetadataError::InvalidBaseUrl(shorten(base)));
    }
    let url = url.trim();
    let unsafe_link = || MetadataError::UnsafeLink(shorten(url));
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(unsafe_link());
    }
    let path = match url.find("://") {
        Some(at) if ["http", "https"].contains(&url[..at].to_ascii_lowercase().as_str()) => {
            let after = &url[at + 3..];
            match after.find(['/', '?', '#']) {
                Some(p) => &after[p..],
                None => "/",
            }
        }
        None if url.starts_with('/') => url,
        _ => return Err(unsafe_link()),
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok(format!("{base}{path}"))
}

/// Where a format's playback is on a BBB server, as a path: where a link
/// that cannot be handed out safely is pointed instead.
pub fn default_playback_path(format: &str, record_id: &str) -> String {
    match format {
        "presentation" => format!("/playback/presentation/2.3/{record_id}"),
        _ => format!("/playback/{format}/{record_id}/"),
    }
}

/// The playback URL of a format on Switchboard's public URL `base`: the
/// server's link rebased (see [`rebase_url`]), or, when that link is not an
/// http(s) URL or a path, the format's default path (never the link itself,
/// so no `javascript:` and no other site reaches a front-end or a redirect).
pub fn playback_url(link: &str, base: &str, format: &str, record_id: &str) -> String {
    rebase_url(link, base).unwrap_or_else(|_| {
        format!(
            "{}{}",
            base.trim().trim_end_matches('/'),
            default_playback_path(format, record_id)
        )
    })
}

/// Rewrites the playback link and every preview image URL of `metadata`
/// onto `base` (Switchboard's public URL); see [`rebase_url`].
pub fn rebase_urls(metadata: &mut RecordingMetadata, base: &str) -> Result<(), MetadataError> {
    metadata.playback.link = rebase_url(&metadata.playback.link, base)?;
    for image in &mut metadata.playback.images {
        image.url = rebase_url(&image.url, base)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const ID: &str = "834c2bfbc2e5c8eb1ad9ac3d4cda2b7bf0e5c1a2-1741369843904";

    /// A realistic metadata.xml for `id` in `format`.
    pub(crate) fn sample(id: &str, format: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<recording>
  <id>{id}</id><state>published</state><published>true</published>
  <start_time>1741369843904</start_time><end_time>1741375480408</end_time>
  <participants>20</participants>
  <meeting id="{id}" externalId="room-42" name="Physics &amp; Maths" breakout="false"/>
  <meta><isBreakout>false</isBreakout><meetingId>room-42</meetingId>
    <meetingName>Physics &amp; Maths</meetingName><bbb-origin>Moodle</bbb-origin>
    <bbb-context><![CDATA[Course <7>]]></bbb-context><gl-listed>&#116;rue</gl-listed></meta>
  <playback><format>{format}</format>
    <link>https://bbb1.example.org/playback/{format}/2.3/{id}</link>
    <processing_time>652354</processing_time><duration>4684838</duration>
    <extensions><preview><images>
      <image width="176" height="136" alt="Welcome">https://bbb1.example.org/{format}/{id}/presentation/p1/thumbnails/thumb-1.png</image>
      <image>https://bbb1.example.org/{format}/{id}/presentation/p1/thumbnails/thumb-2.png</image>
    </images></preview></extensions></playback>
</recording>
"#
        )
    }

    #[test]
    fn parses_the_bbb_sample() {
        let m = parse(sample(ID, "presentation").as_bytes()).unwrap();
        assert_eq!(m.record_id.as_str(), ID);
        assert_eq!(m.internal_meeting_id, ID);
        assert_eq!(m.meeting_id, "room-42");
        assert_eq!(m.name, "Physics & Maths");
        assert!(!m.is_breakout);
        assert_eq!(m.state, "published");
        assert!(m.published);
        assert_eq!(m.start_time_ms, 1_741_369_843_904);
        assert_eq!(m.end_time_ms, 1_741_375_480_408);
        assert_eq!(m.participants, 20);
        let expected: BTreeMap<String, String> = [
            ("bbb-origin", "Moodle"),
            ("bbb-context", "Course <7>"),
            ("gl-listed", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(m.metadata, expected);
        let p = &m.playback;
        assert_eq!(p.format.as_str(), "presentation");
        assert_eq!(
            p.link,
            format!("https://bbb1.example.org/playback/presentation/2.3/{ID}")
        );
        assert_eq!(p.processing_time_ms, Some(652_354));
        assert_eq!(p.duration_ms, Some(4_684_838));
        assert_eq!(p.images.len(), 2);
        assert_eq!(p.images[0].width, Some(176));
        assert_eq!(p.images[0].height, Some(136));
        assert_eq!(p.images[0].alt.as_deref(), Some("Welcome"));
        assert_eq!(p.images[1].width, None);
        assert_eq!(p.images[1].alt, None);
    }

    #[test]
    fn breakout_rooms_and_their_parent_are_read() {
        let parent = format!(
            "<recording><id>{ID}</id><meeting id=\"{ID}\" externalId=\"room\" name=\"R\" breakout=\"false\"/>\
             <breakoutRooms><breakoutRoom>b1-1</breakoutRoom><breakoutRoom> b2-2 </breakoutRoom><other>x</other></breakoutRooms>\
             <playback><format>presentation</format><link>/p</link></playback></recording>"
        );
        let m = parse(parent.as_bytes()).unwrap();
        assert_eq!(m.breakout_rooms, ["b1-1", "b2-2"]);
        assert_eq!((m.parent_meeting_id, m.breakout_sequence), (None, 0));
        let child = format!(
            "<recording><id>{ID}</id><meeting id=\"{ID}\" externalId=\"room-b\" name=\"R (Room 2)\" breakout=\"true\"/>\
             <breakout parentMeetingId=\"p-1\" sequence=\"2\" meetingId=\"{ID}\"/>\
             <playback><format>presentation</format><link>/p</link></playback></recording>"
        );
        let m = parse(child.as_bytes()).unwrap();
        assert!(m.is_breakout);
        assert_eq!(m.parent_meeting_id.as_deref(), Some("p-1"));
        assert_eq!(m.breakout_sequence, 2);
        assert!(m.breakout_rooms.is_empty());
    }

    #[test]
    fn falls_back_to_meta_and_defaults() {
        let xml = format!(
            "<recording><id>{ID}</id><meta><meetingId>m1</meetingId><meetingName>N</meetingName>\
             <isBreakout>true</isBreakout></meta><published>false</published>\
             <playback><format>video</format><link>/playback/video/{ID}/</link></playback></recording>"
        );
        let m = parse(xml.as_bytes()).unwrap();
        assert_eq!(m.meeting_id, "m1");
        assert_eq!(m.name, "N");
        assert!(m.is_breakout);
        assert!(!m.published);
        assert_eq!(m.state, "unpublished");
        assert_eq!(m.start_time_ms, 1_741_369_843_904);
        assert_eq!(m.end_time_ms, m.start_time_ms);
        assert_eq!(m.participants, 0);
        assert!(m.metadata.is_empty());
        assert_eq!(m.playback.duration_ms, None);
    }

    #[test]
    fn refuses_bad_documents() {
        let good = sample(ID, "presentation");
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "no root"),
            ("<recording>".into(), "unclosed"),
            ("<recording></other>".into(), "mismatch"),
            (
                good.replace("<recording>", "<x>")
                    .replace("</recording>", "</x>"),
                "root",
            ),
            (good.replace(ID, "not-an-id"), "record id"),
            (
                good.replace("presentation</format>", "../x</format>"),
                "format",
            ),
            (
                good.replace("<participants>20", "<participants>many"),
                "number",
            ),
            (good.replace("<published>true", "<published>yes"), "bool"),
            (
                good.replace("<playback>", "<nope>")
                    .replace("</playback>", "</nope>"),
                "playback",
            ),
            (
                good.replace("externalId=\"room-42\"", "")
                    .replace("<meetingId>room-42</meetingId>", ""),
                "meeting id",
            ),
            (
                good.replace("&amp; Maths</meetingName>", "&xxe;</meetingName>"),
                "entity",
            ),
            (format!("{good}<recording/>"), "two roots"),
        ];
        for (xml, what) in cases {
            assert!(parse(xml.as_bytes()).is_err(), "{what} accepted");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        let message = parse(deep.as_bytes()).unwrap_err().to_string();
        assert!(message.contains("nested deeper"), "{message}");
        let wide = format!("<recording>{}</recording>", "<x/>".repeat(MAX_ELEMENTS));
        let message = parse(wide.as_bytes()).unwrap_err().to_string();
        assert!(message.contains("elements"), "{message}");
        assert!(matches!(parse(&[0xff, 0xfe]), Err(MetadataError::NotUtf8)));
        let big = vec![b' '; MAX_METADATA_BYTES + 1];
        assert!(matches!(parse(&big), Err(MetadataError::TooLarge { .. })));
    }

    #[test]
    fn never_panics_on_truncations() {
        let good = sample(ID, "presentation");
        for cut in 0..good.len() {
            if good.is_char_boundary(cut) {
                let _ = parse(&good.as_bytes()[..cut]);
            }
        }
        // Every byte flipped to a troublesome one.
        let bytes = good.as_bytes();
        for i in 0..bytes.len() {
            for b in [b'<', b'&', b'>', b'"', 0] {
                let mut copy = bytes.to_vec();
                copy[i] = b;
                let _ = parse(&copy);
            }
        }
    }

    #[test]
    fn rebase_keeps_the_path() {
        let url = format!("https://bbb1.example.org/playback/presentation/2.3/{ID}?x=1");
        assert_eq!(
            rebase_url(&url, "https://lb.example.org").unwrap(),
            format!("https://lb.example.org/playback/presentation/2.3/{ID}?x=1")
        );
        assert_eq!(
            rebase_url(&url, "https://example.org/lb/").unwrap(),
            format!("https://example.org/lb/playback/presentation/2.3/{ID}?x=1")
        );
        assert_eq!(
            rebase_url("http://h:8080", "https://lb").unwrap(),
            "https://lb/"
        );
        assert_eq!(
            rebase_url("/presentation/x.png", "https://lb").unwrap(),
            "https://lb/presentation/x.png"
        );
        for bad in [
            "",
            "lb.example.org",
            "ftp://x",
            "https://",
            "https:///x",
            "https://a?b",
        ] {
            assert!(rebase_url(&url, bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Issue 15.A2: links that are not http(s) URLs or paths are refused,
    /// and a playback URL is always on Switchboard's own public URL.
    #[test]
    fn unsafe_links_are_refused_and_playback_stays_on_site() {
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>",
            "https:\\\\evil.example/x",
            "/\\evil.example/x",
            "vbscript://x/y",
            "https://lb/x\r\nSet-Cookie: a=b",
            "relative/path",
        ] {
            assert!(
                matches!(
                    rebase_url(bad, "https://lb"),
                    Err(MetadataError::UnsafeLink(_))
                ),
                "{bad:?} accepted"
            );
            assert_eq!(
                playback_url(bad, "https://lb/", "presentation", ID),
                format!("https://lb/playback/presentation/2.3/{ID}")
            );
        }
        assert_eq!(
            playback_url("//evil.example/x", "https://lb", "video", ID),
            "https://lb//evil.example/x",
            "a scheme-relative link stays a path on Switchboard"
        );
        assert_eq!(
            playback_url("HTTPS://bbb1/playback/video/x/", "https://lb", "video", ID),
            "https://lb/playback/video/x/"
        );
    }

    #[test]
    fn rebase_urls_moves_link_and_images() {
        let mut m = parse(sample(ID, "presentation").as_bytes()).unwrap();
        rebase_urls(&mut m, "https://lb.example.org").unwrap();
        assert!(
            m.playback
                .link
                .starts_with("https://lb.example.org/playback/")
        );
        assert!(
            m.playback
                .images
                .iter()
                .all(|i| i.url.starts_with("https://lb.example.org/presentation/"))
        );
    }
}
