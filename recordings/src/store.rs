//! One interface over the two places recordings are kept: the tree on disk
//! ([`Layout`], every change a rename) and an object store ([`ObjectTree`],
//! S3 or any S3-compatible server). The import, the BBB recording calls,
//! retention and playback all go through [`RecordingStore`].

use crate::archive::ExtractedRecording;
use crate::layout::{Installed, Layout, LayoutError, Visibility};
use crate::location::{S3Settings, StoreLocation};
use crate::metadata::FormatDir;
use crate::object_tree::ObjectTree;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectMeta, ObjectStore, RetryConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::recording_ids::{FormatName, RecordId};

/// Where recordings are kept.
#[derive(Debug, Clone)]
pub enum RecordingStore {
    /// The tree on disk.
    Disk(Layout),
    /// An object store.
    Object(ObjectTree),
}

/// What a playback request resolved to.
#[derive(Debug, Clone)]
pub enum PlaybackFile {
    /// A file on disk.
    File(PathBuf),
    /// An object (its key, size, ETag and time).
    Object(ObjectMeta),
}

fn task_failed(err: tokio::task::JoinError) -> LayoutError {
    LayoutError::Io {
        action: "run a file task",
        path: PathBuf::new(),
        source: std::io::Error::other(err),
    }
}

async fn blocking<T: Send + 'static>(
    layout: &Layout,
    op: impl FnOnce(&Layout) -> Result<T, LayoutError> + Send + 'static,
) -> Result<T, LayoutError> {
    let layout = layout.clone();
    tokio::task::spawn_blocking(move || op(&layout))
        .await
        .map_err(task_failed)?
}

impl RecordingStore {
    /// Opens the store at `location`: a directory tree is created if
    /// missing; an S3 bucket is reached with `s3` (the bucket must exist).
    /// `local_dir` holds the staging directory of an object store (archives
    /// are unpacked on local disk before upload).
    pub fn open(
        location: &StoreLocation,
        s3: &S3Settings,
        local_dir: &Path,
    ) -> Result<Self, LayoutError> {
        match location {
            StoreLocation::Dir(path) => Ok(Self::Disk(Layout::create(path)?)),
            StoreLocation::S3 { bucket, prefix } => {
                let store = s3_client(bucket, s3).map_err(|source| LayoutError::Store {
                    action: "open",
                    key: location.to_string(),
                    source: Box::new(source),
                })?;
                let staging = local_dir.join(".staging");
                std::fs::create_dir_all(&staging).map_err(|source| LayoutError::Io {
                    action: "create",
                    path: staging.clone(),
                    source,
                })?;
                let store = Arc::new(store);
                Ok(Self::Object(ObjectTree::new(
                    store.clone(),
                    Some(store),
                    prefix,
                    location.to_string(),
                    staging,
                )))
            }
        }
    }

    /// The store as operators write it (a directory, `s3://bucket/prefix`).
    pub fn describe(&self) -> String {
        match self {
            Self::Disk(layout) => layout.root().display().to_string(),
            Self::Object(tree) => tree.description().to_owned(),
        }
    }

    /// The tree on disk, when this is one.
    pub fn layout(&self) -> Option<&Layout> {
        match self {
            Self::Disk(layout) => Some(layout),
            Self::Object(_) => None,
        }
    }

    /// The object store tree, when this is one.
    pub fn object_tree(&self) -> Option<&ObjectTree> {
        match self {
            Self::Disk(_) => None,
            Self::Object(tree) => Some(tree),
        }
    }

    /// Where archives are unpacked before [`install`](Self::install) (on
    /// local disk; for the tree on disk, on its filesystem).
    pub fn staging_dir(&self) -> PathBuf {
        match self {
            Self::Disk(layout) => layout.staging_dir(),
            Self::Object(tree) => tree.staging_dir(),
        }
    }

    /// Every object of the store as an [`ObjectStore`] (the tree on disk
    /// through the local filesystem), with the prefix the trees are under:
    /// what `migrate-store` copies between.
    pub fn objects(&self) -> Result<(Arc<dyn ObjectStore>, Key), LayoutError> {
        match self {
            Self::Disk(layout) => {
                let local = LocalFileSystem::new_with_prefix(layout.root()).map_err(|source| {
                    LayoutError::Store {
                        action: "open",
                        key: layout.root().display().to_string(),
                        source: Box::new(source),
                    }
                })?;
                Ok((Arc::new(local), Key::default()))
            }
            Self::Object(tree) => Ok((tree.store().clone(), tree.prefix().clone())),
        }
    }

    /// Puts one extracted format in the store (see [`Layout::install`] and
    /// [`ObjectTree::install`]); the staged copy is consumed on disk and
    /// left for the caller to remove on an object store.
    pub async fn install(
        &self,
        format: &FormatDir,
        visibility: Visibility,
    ) -> Result<Installed, LayoutError> {
        match self {
            Self::Disk(layout) => {
                let format = format.clone();
                blocking(layout, move |layout| {
                    if format.dir.starts_with(layout.staging_dir()) {
                        return layout.install(&format, visibility);
                    }
                    // Not staged on this tree's filesystem (another tree,
                    // an existing published directory): copied into its
                    // staging first, so the install stays one rename.
                    let staging = layout
                        .staging_dir()
                        .join(format!("copy-{}", hex::encode(rand::random::<[u8; 6]>())));
                    let copy = staging
                        .join(format.format.as_str())
                        .join(format.record_id.as_str());
                    let result = copy_dir(&format.dir, &copy)
                        .map_err(|source| LayoutError::Io {
                            action: "copy",
                            path: format.dir.clone(),
                            source,
                        })
                        .and_then(|()| {
                            let staged = FormatDir {
                                dir: copy.clone(),
                                ..format.clone()
                            };
                            layout.install(&staged, visibility)
                        });
                    let _ = std::fs::remove_dir_all(&staging);
                    result
                })
                .await
            }
            Self::Object(tree) => tree.install(format, visibility).await,
        }
    }

    /// Installs every format of an extracted archive, in the tree its
    /// metadata asks for unless the recording is already there.
    pub async fn install_all(
        &self,
        recording: &ExtractedRecording,
    ) -> Result<Vec<Installed>, LayoutError> {
        let mut installed = Vec::new();
        for format in recording.formats() {
            installed.push(
                self.install(
                    format,
                    Visibility::from_published(format.metadata.published),
                )
                .await?,
            );
        }
        Ok(installed)
    }

    /// Every format of the recording, with its tree, sorted by format.
    pub async fn locate(
        &self,
        id: &RecordId,
    ) -> Result<Vec<(FormatName, Visibility)>, LayoutError> {
        match self {
            Self::Disk(layout) => {
                let id = id.clone();
                blocking(layout, move |layout| layout.locate(&id)).await
            }
            Self::Object(tree) => tree.locate(id).await,
        }
    }

    /// The recordings with a format in `visibility`'s tree, sorted.
    pub async fn record_ids(&self, visibility: Visibility) -> Result<Vec<RecordId>, LayoutError> {
        match self {
            Self::Disk(layout) => {
                blocking(layout, move |layout| layout.record_ids(visibility)).await
            }
            Self::Object(tree) => tree.record_ids(visibility).await,
        }
    }

    /// Moves every format of the recording into `visibility`'s tree.
    pub async fn set_visibility(
        &self,
        id: &RecordId,
        visibility: Visibility,
    ) -> Result<Vec<FormatName>, LayoutError> {
        match self {
            Self::Disk(layout) => {
                let id = id.clone();
                blocking(layout, move |layout| layout.set_visibility(&id, visibility)).await
            }
            Self::Object(tree) => tree.set_visibility(id, visibility).await,
        }
    }

    /// Removes the recording's files.
    pub async fn delete(&self, id: &RecordId) -> Result<Vec<FormatName>, LayoutError> {
        match self {
            Self::Disk(layout) => {
                let id = id.clone();
                blocking(layout, move |layout| layout.delete(&id)).await
            }
            Self::Object(tree) => tree.delete(id).await,
        }
    }

    /// Maps a playback request path to a published file or object.
    pub async fn resolve_playback(&self, request_path: &str) -> Result<PlaybackFile, LayoutError> {
        match self {
            Self::Disk(layout) => {
                let path = request_path.to_owned();
                blocking(layout, move |layout| layout.resolve_playback(&path))
                    .await
                    .map(PlaybackFile::File)
            }
            Self::Object(tree) => tree
                .resolve_playback(request_path)
                .await
                .map(PlaybackFile::Object),
        }
    }
}

/// An S3 client for `bucket` as `settings` say (the AWS_* environment fills
/// what they leave out). Retries are bounded (3 attempts in 15 s), so a
/// dead store fails a request instead of holding it for minutes; a
/// response that stalls for a minute fails.
pub fn s3_client(
    bucket: &str,
    settings: &S3Settings,
) -> Result<object_store::aws::AmazonS3, object_store::Error> {
    // reqwest is built without a default TLS provider: every entry point
    // (serve, worker, CLI) reaches S3 through here, so install ours once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    // No cap on a whole request (a large object streams for as long as it
    // takes; a viewer may pause a video); a connection that stops sending
    // for a minute fails.
    let mut client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout_disabled()
        .with_read_timeout(Duration::from_secs(60));
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        client = client.with_allow_http(endpoint.starts_with("http://"));
    }
    match &settings.region {
        Some(region) => builder = builder.with_region(region),
        None if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none() =>
        {
            builder = builder.with_region("us-east-1");
        }
        None => {}
    }
    if let Some(key) = &settings.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    builder
        .with_virtual_hosted_style_request(settings.virtual_hosted)
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
            ..RetryConfig::default()
        })
        .with_client_options(client)
        .build()
}

/// Copies `from` into `to` (directories and regular files only; links and
/// special files are skipped).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
