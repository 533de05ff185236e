//! Copying recordings from one store to another (`switchboard recordings
//! migrate-store`): every object of a recording is streamed across (a
//! multipart upload for large files), then read back from the target and
//! compared with the source by SHA-256 and size. An object already at the
//! target with the same content is left alone, so an interrupted migration
//! run again continues where it stopped. The completion marker
//! (`metadata.xml`) of each format is copied last.

use crate::layout::{LayoutError, Visibility};
use crate::object_tree::{MARKER, PART_SIZE, content_type, store_err};
use crate::store::RecordingStore;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{Attribute, Attributes, ObjectMeta, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use switchboard_domain::recording_ids::RecordId;
use tokio::io::AsyncWriteExt;

/// What copying one recording did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Objects copied now.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects already at the target with the same content.
    pub present: u64,
}

/// SHA-256 and size of an object, streamed.
async fn digest(store: &Arc<dyn ObjectStore>, key: &Key) -> Result<([u8; 32], u64), LayoutError> {
    let mut stream = store
        .get(key)
        .await
        .map_err(store_err("read", key))?
        .into_stream();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(store_err("read", key))?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hasher.finalize().into(), size))
}

/// Streams `from` to `to` (with its content type, unless the target is the
/// local filesystem, which keeps none); returns the source's SHA-256.
async fn copy_object(
    source: &Arc<dyn ObjectStore>,
    from: &Key,
    target: &Arc<dyn ObjectStore>,
    to: &Key,
    typed: bool,
) -> Result<[u8; 32], LayoutError> {
    let mut stream = source
        .get(from)
        .await
        .map_err(store_err("read", from))?
        .into_stream();
    let mut writer =
        BufWriter::with_capacity(target.clone(), to.clone(), PART_SIZE).with_max_concurrency(2);
    if typed {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type(to.as_ref()).into());
        writer = writer.with_attributes(attributes);
    }
    let mut hasher = Sha256::new();
    let write_err = |source: std::io::Error| LayoutError::Store {
        action: "write",
        key: to.to_string(),
        source: Box::new(object_store::Error::Generic {
            store: "migrate",
            source: Box::new(source),
        }),
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                let _ = writer.abort().await;
                return Err(store_err("read", from)(err));
            }
        };
        hasher.update(&chunk);
        if let Err(err) = writer.write_all(&chunk).await {
            let _ = writer.abort().await;
            return Err(write_err(err));
        }
    }
    writer.shutdown().await.map_err(write_err)?;
    Ok(hasher.finalize().into())
}

/// Every object under `key`, the format markers last.
async fn objects_under(
    store: &Arc<dyn ObjectStore>,
    key: &Key,
) -> Result<Vec<ObjectMeta>, LayoutError> {
    let mut objects: Vec<ObjectMeta> = store
        .list(Some(key))
        .try_collect()
        .await
        .map_err(store_err("list", key))?;
    objects.sort_by_key(|meta| {
        (
            meta.location.filename() == Some(MARKER),
            meta.location.clone(),
        )
    });
    Ok(objects)
}

/// The key of `meta` below `from_base`, moved below `to_base`.
fn rebase(meta: &ObjectMeta, from_base: &Key, to_base: &Key) -> Option<Key> {
    let rest: Vec<_> = meta.location.prefix_match(from_base)?.collect();
    Some(
        rest.into_iter()
            .fold(to_base.clone(), |key, part| key.join(part)),
    )
}

/// Copies every format of a recording (in whichever tree it is) from
/// `from` to `to`, verifying each object; the source is left as it is.
pub async fn copy_recording(
    from: &RecordingStore,
    to: &RecordingStore,
    id: &RecordId,
) -> Result<Copied, LayoutError> {
    let (source, source_prefix) = from.objects()?;
    let (target, target_prefix) = to.objects()?;
    let mut copied = Copied::default();
    let located = from.locate(id).await?;
    if located.is_empty() {
        return Err(LayoutError::NotFound(id.clone()));
    }
    for (format, visibility) in located {
        let tree = |prefix: &Key, vis: Visibility| {
            prefix
                .clone()
                .join(vis.dir_name())
                .join(format.as_str())
                .join(id.as_str())
        };
        let from_base = tree(&source_prefix, visibility);
        let mut to_base = tree(&target_prefix, visibility);
        // A tree on disk counts a format directory as complete as soon as
        // it exists: a new one is copied into its staging area and renamed
        // into place once every file is verified.
        let mut staged = None;
        if let Some(layout) = to.layout() {
            let final_dir = layout.format_dir(visibility, &format, id);
            if !final_dir.is_dir() {
                let name = format!("migrate-{}", hex::encode(rand::random::<[u8; 6]>()));
                to_base = Key::from(".staging")
                    .join(name.as_str())
                    .join(format.as_str())
                    .join(id.as_str());
                staged = Some((layout.staging_dir().join(name), final_dir));
            }
        }
        for meta in objects_under(&source, &from_base).await? {
            let Some(to_key) = rebase(&meta, &from_base, &to_base) else {
                continue;
            };
            let present = match target.head(&to_key).await {
                Ok(there) if there.size == meta.size => {
                    digest(&source, &meta.location).await? == digest(&target, &to_key).await?
                }
                Ok(_) | Err(object_store::Error::NotFound { .. }) => false,
                Err(err) => return Err(store_err("read", &to_key)(err)),
            };
            if present {
                copied.present += 1;
                continue;
            }
            let typed = to.layout().is_none();
            let sent = copy_object(&source, &meta.location, &target, &to_key, typed).await?;
            let (landed, size) = digest(&target, &to_key).await?;
            if landed != sent || size != meta.size {
                return Err(LayoutError::Store {
                    action: "verify",
                    key: to_key.to_string(),
                    source: Box::new(object_store::Error::Generic {
                        store: "migrate",
                        source: "the copy differs from the source (SHA-256 or size)".into(),
                    }),
                });
            }
            copied.objects += 1;
            copied.bytes += meta.size;
        }
        if let Some((staging, final_dir)) = staged {
            let staged_dir = staging.join(format.as_str()).join(id.as_str());
            let io = |action, path: &std::path::Path| {
                let path = path.to_path_buf();
                move |source| LayoutError::Io {
                    action,
                    path,
                    source,
                }
            };
            if let Some(parent) = final_dir.parent() {
                std::fs::create_dir_all(parent).map_err(io("create", parent))?;
            }
            std::fs::rename(&staged_dir, &final_dir).map_err(io("move into place", &staged_dir))?;
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    Ok(copied)
}
