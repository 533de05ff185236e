//! The recording tree in an object store (S3 or any [`ObjectStore`]), keyed
//! as the tree on disk is laid out:
//!
//! ```text
//! <prefix>/published/<format>/<recordID>/<file>      served by playback
//! <prefix>/unpublished/<format>/<recordID>/<file>    kept, not served
//! ```
//!
//! An object store has no atomic rename of a directory, so completeness is
//! marked instead: a format counts as present only when its
//! `metadata.xml` is there, and that object is written last (on install
//! and on a move) and removed first (on a move and a delete). A crash in
//! the middle leaves objects that no listing counts and no playback serves
//! (playback also asks the database first); running the same operation
//! again finishes the job, as on disk.
//!
//! Files are streamed: uploads go through [`BufWriter`] (one `PUT` below
//! [`PART_SIZE`], a multipart upload above), downloads as a byte stream, so
//! no whole file is ever held in memory.

use crate::layout::{Installed, LayoutError, Visibility};
use crate::metadata::FormatDir;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
pub use object_store::ObjectMeta;
use object_store::buffered::BufWriter;
use object_store::path::{Path as Key, PathPart};
use object_store::signer::Signer;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::recording_ids::{FormatName, RecordId, shorten};
use tokio::io::AsyncWriteExt;

/// Bytes of one part of a multipart upload (and the size above which an
/// upload is multipart). S3 wants at least 5 MiB.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Small files uploaded (or objects moved) at once.
const CONCURRENCY: usize = 4;

/// Parts of one large file uploaded at once.
const UPLOAD_PARTS: usize = 3;

/// The object that marks a format as complete.
pub const MARKER: &str = "metadata.xml";

/// The recording tree in an object store.
#[derive(Clone)]
pub struct ObjectTree {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    prefix: Key,
    description: String,
    staging: PathBuf,
}

impl fmt::Debug for ObjectTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectTree")
            .field("store", &self.description)
            .field("staging", &self.staging)
            .finish_non_exhaustive()
    }
}

/// Wraps an object store error with what was done on which key.
pub(crate) fn store_err(
    action: &'static str,
    key: &Key,
) -> impl FnOnce(object_store::Error) -> LayoutError {
    let key = key.to_string();
    move |source| LayoutError::Store {
        action,
        key,
        source: Box::new(source),
    }
}

fn part(text: &str) -> PathPart<'static> {
    PathPart::from(text.to_owned())
}

impl ObjectTree {
    /// A tree under `prefix` of `store`; archives are unpacked in `staging`
    /// on local disk before upload. `signer` presigns playback URLs (`None`:
    /// the store cannot, so playback streams). `description` names the
    /// store in logs and errors (`s3://bucket/prefix`).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        signer: Option<Arc<dyn Signer>>,
        prefix: &str,
        description: impl Into<String>,
        staging: impl Into<PathBuf>,
    ) -> Self {
        let prefix = Key::from_iter(prefix.split('/').filter(|p| !p.is_empty()).map(part));
        Self {
            store,
            signer,
            prefix,
            description: description.into(),
            staging: staging.into(),
        }
    }

    /// The store as operators wrote it.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key prefix everything is under.
    pub fn prefix(&self) -> &Key {
        &self.prefix
    }

    /// Where archives are unpacked before upload (local disk).
    pub fn staging_dir(&self) -> PathBuf {
        self.staging.clone()
    }

    /// Whether playback can be presigned.
    pub fn can_presign(&self) -> bool {
        self.signer.is_some()
    }

    /// `<prefix>/<tree>`.
    pub fn tree(&self, visibility: Visibility) -> Key {
        self.prefix.clone().join(visibility.dir_name())
    }

    /// `<prefix>/<tree>/<format>/<recordID>`.
    pub fn format_key(&self, visibility: Visibility, format: &FormatName, id: &RecordId) -> Key {
        self.tree(visibility)
            .join(part(format.as_str()))
            .join(part(id.as_str()))
    }

    async fn children(&self, under: &Key) -> Result<Vec<String>, LayoutError> {
        let listing = self
            .store
            .list_with_delimiter(Some(under))
            .await
            .map_err(store_err("list", under))?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|prefix| prefix.filename().map(str::to_owned))
            .collect())
    }

    async fn formats(&self, visibility: Visibility) -> Result<Vec<FormatName>, LayoutError> {
        Ok(self
            .children(&self.tree(visibility))
            .await?
            .iter()
            .filter_map(|name| FormatName::parse(name).ok())
            .collect())
    }

    async fn exists(&self, key: &Key) -> Result<bool, LayoutError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(store_err("read", key)(err)),
        }
    }

    /// Every object under a format key, the marker last.
    async fn objects_under(&self, key: &Key) -> Result<Vec<ObjectMeta>, LayoutError> {
        let mut objects: Vec<ObjectMeta> = self
            .store
            .list(Some(key))
            .try_collect()
            .await
            .map_err(store_err("list", key))?;
        let marker = key.clone().join(MARKER);
        objects.sort_by_key(|meta| (meta.location == marker, meta.location.clone()));
        Ok(objects)
    }

    /// The recordings with at least one complete format in `visibility`'s
    /// tree, sorted.
    pub async fn record_ids(&self, visibility: Visibility) -> Result<Vec<RecordId>, LayoutError> {
        let mut ids = BTreeSet::new();
        for format in self.formats(visibility).await? {
            let dir = self.tree(visibility).join(part(format.as_str()));
            for name in self.children(&dir).await? {
                if let Ok(id) = RecordId::parse(&name)
                    && self
                        .exists(&self.format_key(visibility, &format, &id).join(MARKER))
                        .await?
                {
                    ids.insert(id);
                }
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// Every complete format of the recording, with its tree, sorted by
    /// format (a format in both trees, after an interrupted move, twice).
    pub async fn locate(
        &self,
        id: &RecordId,
    ) -> Result<Vec<(FormatName, Visibility)>, LayoutError> {
        let mut found = Vec::new();
        for visibility in [Visibility::Published, Visibility::Unpublished] {
            for format in self.formats(visibility).await? {
                let marker = self.format_key(visibility, &format, id).join(MARKER);
                if self.exists(&marker).await? {
                    found.push((format, visibility));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Uploads one extracted format (a directory on local disk), the marker
    /// last. A recording already in the store keeps its tree; a format
    /// already complete there is left as it is (`new: false`).
    pub async fn install(
        &self,
        format: &FormatDir,
        visibility: Visibility,
    ) -> Result<Installed, LayoutError> {
        let located = self.locate(&format.record_id).await?;
        if let Some((_, vis)) = located.iter().find(|(f, _)| *f == format.format) {
            return Ok(Installed {
                format: format.format.clone(),
                visibility: *vis,
                dir: PathBuf::from(
                    self.format_key(*vis, &format.format, &format.record_id)
                        .to_string(),
                ),
                new: false,
            });
        }
        let visibility = located.first().map(|(_, v)| *v).unwrap_or(visibility);
        let base = self.format_key(visibility, &format.format, &format.record_id);
        let dir = format.dir.clone();
        let files = tokio::task::spawn_blocking(move || local_files(&dir))
            .await
            .map_err(|err| LayoutError::Io {
                action: "list",
                path: format.dir.clone(),
                source: std::io::Error::other(err),
            })??;
        let (marker, rest): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|(parts, _, _)| parts.len() == 1 && parts[0] == MARKER);
        // Small files go [`CONCURRENCY`] at a time, then each large one on
        // its own (its parts in parallel): memory stays a few parts,
        // whatever the recording's size.
        let (large, small): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|(_, _, size)| *size > PART_SIZE as u64);
        // Futures collected first: a stream that maps with a closure is not
        // `Send` for every lifetime, which a spawned import needs.
        let uploads: Vec<BoxFuture<'_, Result<(), LayoutError>>> = small
            .into_iter()
            .map(|(parts, file, _)| {
                let key = parts.iter().fold(base.clone(), |key, p| key.join(part(p)));
                async move { self.upload(&file, &key).await }.boxed()
            })
            .collect();
        run_all(uploads).await?;
        for (parts, file, _) in large {
            let key = parts.iter().fold(base.clone(), |key, p| key.join(part(p)));
            self.upload(&file, &key).await?;
        }
        for (_, file, _) in marker {
            self.upload(&file, &base.clone().join(MARKER)).await?;
        }
        Ok(Installed {
            format: format.format.clone(),
            visibility,
            dir: PathBuf::from(base.to_string()),
            new: true,
        })
    }

    /// Uploads one local file to `key`, streamed (multipart above
    /// [`PART_SIZE`]), with its content type.
    pub async fn upload(&self, file: &Path, key: &Key) -> Result<(), LayoutError> {
        let io = |action| {
            let path = file.to_path_buf();
            move |source| LayoutError::Io {
                action,
                path,
                source,
            }
        };
        let mut source = tokio::fs::File::open(file).await.map_err(io("open"))?;
        let mut writer = BufWriter::with_capacity(self.store.clone(), key.clone(), PART_SIZE)
            .with_max_concurrency(UPLOAD_PARTS)
            .with_attributes(content_attributes(key.as_ref()));
        if let Err(source) = tokio::io::copy(&mut source, &mut writer).await {
            let _ = writer.abort().await;
            return Err(LayoutError::Store {
                action: "upload",
                key: key.to_string(),
                source: Box::new(object_store::Error::Generic {
                    store: "upload",
                    source: Box::new(source),
                }),
            });
        }
        writer
            .shutdown()
            .await
            .map_err(|source| LayoutError::Store {
                action: "finish uploading",
                key: key.to_string(),
                source: Box::new(object_store::Error::Generic {
                    store: "upload",
                    source: Box::new(source),
                }),
            })
    }

    /// Moves every format of the recording into `visibility`'s tree (copy
    /// then delete, the marker copied last and removed first); returns the
    /// formats now there. Safe to re-run after a crash.
    pub async fn set_visibility(
        &self,
        id: &RecordId,
        visibility: Visibility,
    ) -> Result<Vec<FormatName>, LayoutError> {
        let mut formats = BTreeSet::new();
        let from = visibility.other();
        for format in self.formats(from).await? {
            let source = self.format_key(from, &format, id);
            let objects = self.objects_under(&source).await?;
            if objects.is_empty() {
                continue;
            }
            let target = self.format_key(visibility, &format, id);
            let moved = |meta: &ObjectMeta| {
                let rest: Vec<_> = meta
                    .location
                    .prefix_match(&source)
                    .map(|parts| parts.collect())
                    .unwrap_or_default();
                rest.into_iter().fold(target.clone(), |key, p| key.join(p))
            };
            let (marker, others) = objects.split_last().expect("not empty");
            let marker_key = source.clone().join(MARKER);
            let copies: Vec<BoxFuture<'_, Result<(), LayoutError>>> = others
                .iter()
                .map(|meta| {
                    let (from, to) = (meta.location.clone(), moved(meta));
                    let store = self.store.clone();
                    async move {
                        store
                            .copy(&from, &to)
                            .await
                            .map_err(store_err("copy", &from))
                    }
                    .boxed()
                })
                .collect();
            run_all(copies).await?;
            let to = moved(marker);
            self.store
                .copy(&marker.location, &to)
                .await
                .map_err(store_err("copy", &marker.location))?;
            if marker.location == marker_key {
                self.delete_key(&marker.location).await?;
            }
            self.delete_all(others.iter().map(|m| m.location.clone()).collect())
                .await?;
            if marker.location != marker_key {
                self.delete_key(&marker.location).await?;
            }
            formats.insert(format);
        }
        for (format, vis) in self.locate(id).await? {
            if vis == visibility {
                formats.insert(format);
            }
        }
        if formats.is_empty() {
            return Err(LayoutError::NotFound(id.clone()));
        }
        Ok(formats.into_iter().collect())
    }

    async fn delete_key(&self, key: &Key) -> Result<(), LayoutError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(store_err("delete", key)(err)),
        }
    }

    async fn delete_all(&self, keys: Vec<Key>) -> Result<(), LayoutError> {
        let locations = stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(locations);
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => {
                    return Err(LayoutError::Store {
                        action: "delete",
                        key: self.description.clone(),
                        source: Box::new(err),
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes every object of the recording (markers first, so playback
    /// and listings stop at once); returns the formats removed. A re-run
    /// after a crash finishes the removal.
    pub async fn delete(&self, id: &RecordId) -> Result<Vec<FormatName>, LayoutError> {
        let mut doomed: BTreeMap<FormatName, Vec<ObjectMeta>> = BTreeMap::new();
        for visibility in [Visibility::Published, Visibility::Unpublished] {
            for format in self.formats(visibility).await? {
                let objects = self
                    .objects_under(&self.format_key(visibility, &format, id))
                    .await?;
                if !objects.is_empty() {
                    doomed.entry(format).or_default().extend(objects);
                }
            }
        }
        if doomed.is_empty() {
            return Err(LayoutError::NotFound(id.clone()));
        }
        let (markers, others): (Vec<Key>, Vec<Key>) = doomed
            .values()
            .flatten()
            .map(|meta| meta.location.clone())
            .partition(|key| key.filename() == Some(MARKER));
        self.delete_all(markers).await?;
        self.delete_all(others).await?;
        Ok(doomed.into_keys().collect())
    }

    /// Maps a playback request path `<format>/<recordID>/<rest>` to an
    /// object of a published recording (with its size, ETag and time).
    /// Refuses `.`, `..`, empty and unusual segments, as on disk.
    pub async fn resolve_playback(&self, request_path: &str) -> Result<ObjectMeta, LayoutError> {
        let shown = shorten(request_path);
        let (format, id, rest) = crate::layout::playback_parts(request_path)?;
        let key = rest.iter().fold(
            self.format_key(Visibility::Published, &format, &id),
            |key, segment| key.join(part(segment)),
        );
        match self.store.head(&key).await {
            Ok(meta) => Ok(meta),
            Err(object_store::Error::NotFound { .. }) => Err(LayoutError::NoSuchFile(shown)),
            Err(err) => Err(store_err("read", &key)(err)),
        }
    }

    /// Streams `range` of an object (all of it for `None`; the range is
    /// clamped to the object). The object must still be the one `meta`
    /// describes (its ETag), or this fails.
    pub async fn read(
        &self,
        meta: &ObjectMeta,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BoxStream<'static, std::io::Result<bytes::Bytes>>, LayoutError> {
        let options = object_store::GetOptions {
            range: range.map(object_store::GetRange::Bounded),
            if_match: meta.e_tag.clone(),
            ..object_store::GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&meta.location, options)
            .await
            .map_err(store_err("read", &meta.location))?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// A URL that lets its holder `GET` the object for `ttl` (`None` when
    /// the store cannot presign).
    pub async fn presign(&self, key: &Key, ttl: Duration) -> Result<Option<String>, LayoutError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        signer
            .signed_url(http::Method::GET, key, ttl)
            .await
            .map(|url| Some(url.to_string()))
            .map_err(store_err("presign", key))
    }
}

/// Runs the futures, [`CONCURRENCY`] at a time, until one fails.
async fn run_all(futures: Vec<BoxFuture<'_, Result<(), LayoutError>>>) -> Result<(), LayoutError> {
    stream::iter(futures)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// The content type of a key, by its extension (BBB recordings hold HTML,
/// JS, CSS, XML, JSON, SVG, PNG, WebM, MP4, Opus, VTT…).
pub fn content_type(name: &str) -> String {
    if name.ends_with(".vtt") {
        return "text/vtt".to_owned();
    }
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

fn content_attributes(name: &str) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, content_type(name).into());
    attributes
}

/// The regular files under `dir` (symbolic links and special files are
/// skipped), each with its path segments below `dir` and its size.
fn local_files(dir: &Path) -> Result<Vec<(Vec<String>, PathBuf, u64)>, LayoutError> {
    let mut found = Vec::new();
    let mut pending = vec![(Vec::<String>::new(), dir.to_path_buf())];
    while let Some((parts, path)) = pending.pop() {
        let entries = std::fs::read_dir(&path).map_err(|source| LayoutError::Io {
            action: "list",
            path: path.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| LayoutError::Io {
                action: "list",
                path: path.clone(),
                source,
            })?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let mut child = parts.clone();
            child.push(name);
            if kind.is_dir() {
                pending.push((child, entry.path()));
            } else if kind.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                found.push((child, entry.path(), size));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    const ID: &str = "9a0364b9e99bb480dd25e1f0284c8555a8a4e6b1-1741369843904";

    fn metadata(format: &str, published: bool) -> String {
        format!(
            "<recording><id>{ID}</id><published>{published}</published>\
             <meta><meetingId>m1</meetingId><meetingName>N</meetingName></meta>\
             <playback><format>{format}</format><link>/playback/{format}/{ID}/</link></playback></recording>"
        )
    }

    /// A staged format directory with metadata.xml, an index and a nested file.
    fn staged(root: &Path, format: &str, published: bool) -> FormatDir {
        let dir = root.join(format).join(ID);
        std::fs::create_dir_all(dir.join("video")).unwrap();
        std::fs::write(dir.join(MARKER), metadata(format, published)).unwrap();
        std::fs::write(dir.join("index.html"), "<html></html>").unwrap();
        std::fs::write(dir.join("video/webcams.webm"), vec![7u8; 1000]).unwrap();
        FormatDir::load(
            &dir,
            FormatName::parse(format).unwrap(),
            RecordId::parse(ID).unwrap(),
        )
        .unwrap()
    }

    fn tree(staging: &Path) -> (ObjectTree, Arc<InMemory>) {
        let memory = Arc::new(InMemory::new());
        let tree = ObjectTree::new(memory.clone(), None, "pool/a", "memory://", staging);
        (tree, memory)
    }

    async fn keys(store: &InMemory) -> Vec<String> {
        let mut keys: Vec<String> = store
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn install_move_and_delete_keep_the_tree_layout() {
        let temp = tempfile::tempdir().unwrap();
        let (tree, memory) = tree(temp.path());
        let id = RecordId::parse(ID).unwrap();
        let presentation = staged(temp.path(), "presentation", true);
        let installed = tree
            .install(&presentation, Visibility::Published)
            .await
            .unwrap();
        assert!(installed.new);
        assert_eq!(
            keys(&memory).await,
            [
                format!("pool/a/published/presentation/{ID}/index.html"),
                format!("pool/a/published/presentation/{ID}/metadata.xml"),
                format!("pool/a/published/presentation/{ID}/video/webcams.webm"),
            ]
        );
        // A second format lands beside the first; the same one again is not new.
        let video = staged(temp.path(), "video", false);
        let second = tree.install(&video, Visibility::Unpublished).await.unwrap();
        assert_eq!(second.visibility, Visibility::Published);
        assert!(
            !tree
                .install(&presentation, Visibility::Published)
                .await
                .unwrap()
                .new
        );
        assert_eq!(tree.locate(&id).await.unwrap().len(), 2);
        assert_eq!(
            tree.record_ids(Visibility::Published).await.unwrap(),
            std::slice::from_ref(&id)
        );

        let meta = tree
            .resolve_playback(&format!("presentation/{ID}/video/webcams.webm"))
            .await
            .unwrap();
        assert_eq!(meta.size, 1000);

        tree.set_visibility(&id, Visibility::Unpublished)
            .await
            .unwrap();
        assert!(
            tree.record_ids(Visibility::Published)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            keys(&memory)
                .await
                .iter()
                .all(|k| k.starts_with("pool/a/unpublished/"))
        );
        assert!(matches!(
            tree.resolve_playback(&format!("presentation/{ID}/index.html"))
                .await,
            Err(LayoutError::NoSuchFile(_))
        ));
        // Moving again is a no-op that still names the formats.
        assert_eq!(
            tree.set_visibility(&id, Visibility::Unpublished)
                .await
                .unwrap()
                .len(),
            2
        );
        tree.set_visibility(&id, Visibility::Published)
            .await
            .unwrap();
        assert_eq!(keys(&memory).await.len(), 6);

        assert_eq!(tree.delete(&id).await.unwrap().len(), 2);
        assert!(keys(&memory).await.is_empty());
        assert!(matches!(
            tree.delete(&id).await,
            Err(LayoutError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn an_interrupted_upload_is_not_counted_and_is_redone() {
        let temp = tempfile::tempdir().unwrap();
        let (tree, memory) = tree(temp.path());
        let id = RecordId::parse(ID).unwrap();
        let format = staged(temp.path(), "presentation", true);
        // As a crash after the first file: an object, but no marker.
        let base = tree.format_key(Visibility::Published, &format.format, &id);
        tree.upload(
            &format.dir.join("index.html"),
            &base.clone().join("index.html"),
        )
        .await
        .unwrap();
        assert!(tree.locate(&id).await.unwrap().is_empty());
        assert!(
            tree.record_ids(Visibility::Published)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            tree.install(&format, Visibility::Published)
                .await
                .unwrap()
                .new
        );
        assert_eq!(keys(&memory).await.len(), 3);
        // An interrupted move (the marker copied, the source not yet removed)
        // is finished by running it again.
        let marker = base.clone().join(MARKER);
        let moved = tree
            .format_key(Visibility::Unpublished, &format.format, &id)
            .join(MARKER);
        memory.copy(&marker, &moved).await.unwrap();
        tree.set_visibility(&id, Visibility::Unpublished)
            .await
            .unwrap();
        assert_eq!(
            tree.locate(&id).await.unwrap(),
            [(format.format.clone(), Visibility::Unpublished)]
        );
        assert_eq!(keys(&memory).await.len(), 3);
    }

    #[tokio::test]
    async fn playback_paths_never_leave_the_recording() {
        let temp = tempfile::tempdir().unwrap();
        let (tree, _) = tree(temp.path());
        let format = staged(temp.path(), "presentation", true);
        tree.install(&format, Visibility::Published).await.unwrap();
        for bad in [
            format!("presentation/{ID}/../{ID}/index.html"),
            format!("presentation/{ID}/./index.html"),
            format!("presentation/{ID}//index.html"),
            format!("presentation/{ID}/a\\b"),
            "presentation/not-an-id/index.html".to_owned(),
            format!("../presentation/{ID}/index.html"),
        ] {
            assert!(
                matches!(
                    tree.resolve_playback(&bad).await,
                    Err(LayoutError::Refused { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            tree.resolve_playback(&format!("presentation/{ID}")).await,
            Err(LayoutError::NoSuchFile(_))
        ));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a/index.html"), "text/html");
        assert_eq!(content_type("webcams.webm"), "video/webm");
        assert_eq!(content_type("captions.vtt"), "text/vtt");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
