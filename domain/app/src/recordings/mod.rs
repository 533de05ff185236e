//! The recording use cases: the service that owns the recording tree and
//! the spool ([`RecordingService`]), importing archives and published trees
//! ([`import`]; a recording-ready callback is written to the callback outbox
//! with the import's event) and caption tracks ([`text_tracks`]).
//!
//! The transports call these: the BBB API and the playback and upload routes
//! of `switchboard-api`, the import jobs of `switchboard-workers`, the CLI.

pub mod calls;
pub mod expiry;
pub mod import;
pub mod migrate;
pub mod stores;
pub mod text_tracks;
pub mod uploads;

use crate::error::StoreError;
use crate::executor::CommandExecutor;
use crate::ports::Database;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use stores::RecordingStores;
use switchboard_domain::recording_ids::RecordId;
use switchboard_recordings::protected::{self, UsedTokens, UsedTokensError};
use switchboard_recordings::spool::{Spool, SpoolConfig};
use switchboard_recordings::{PlaybackKey, RecordingStore, S3Settings, StoreLocation};
use thiserror::Error;

/// The settings key of the playback key generated at first start (shared by
/// every instance on the database).
const PLAYBACK_KEY_SETTING: &str = "recordings_playback_key";

/// What the recording use cases are told: where the tree and the spool are,
/// and how imports, callbacks and protected links behave.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSettings {
    /// The local recordings directory: the tree on disk when no `store` is
    /// set, and always the caption tracks and an object store's staging.
    pub dir: PathBuf,
    /// The deployment's store when it is not the tree under `dir`: another
    /// directory, or `s3://BUCKET/PREFIX`.
    pub store: Option<String>,
    /// How S3 stores are reached (endpoint, region, credentials).
    pub s3: S3Settings,
    /// The spool directory archives arrive in.
    pub spool_dir: PathBuf,
    /// Switchboard's configured public URL (playback links are built on it);
    /// `None`: the bound address, set with
    /// [`RecordingService::bind_public_url`].
    pub public_url: Option<String>,
    /// Seconds an archive must stay unchanged before it is imported.
    pub spool_settle_secs: f64,
    /// Seconds between rescans of the spool (the watcher can miss events).
    pub rescan_interval_secs: f64,
    /// Attempts of one import before the archive waits for the next rescan.
    pub import_attempts: u32,
    /// Milliseconds before the first retry of an import or callback (doubles).
    pub retry_base_ms: u64,
    /// Keep imported archives in `<spool>/done` (else delete them).
    pub keep_done: bool,
    /// Seconds a protected recording's one-time link stays valid.
    pub link_ttl_secs: u64,
    /// How long a recording-ready callback is attempted.
    pub callback_retry_for: Duration,
    /// Caps on one archive (total and per-file bytes, entries).
    pub archive_limits: switchboard_recordings::ArchiveLimits,
    /// How long `done/`, `failed/` and interrupted work's leftovers are kept.
    pub retention: switchboard_recordings::spool::Retention,
    /// Days recordings are kept after they end, for tenants without their
    /// own value (`None`: kept until deleted).
    pub retention_days: Option<u32>,
}

/// Why the recording service could not start.
#[derive(Debug, Error)]
pub enum RecordingSetupError {
    /// The recording tree could not be created, or the store opened.
    #[error(transparent)]
    Layout(#[from] switchboard_recordings::LayoutError),
    /// The store is written wrong.
    #[error(transparent)]
    Location(#[from] switchboard_recordings::location::LocationError),
    /// The spool could not be created.
    #[error("cannot create the directory {path}: {source}")]
    Spool {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The playback key could not be read or stored.
    #[error("cannot read or store the playback key: {0}")]
    Store(#[from] StoreError),
    /// The stored playback key is unusable.
    #[error("the stored playback key is unusable: {0}")]
    Key(String),
}

/// Everything recordings need: the tree, settings, key, database.
pub struct RecordingService {
    /// Where recordings are kept: the deployment's store and the tenants'.
    pub stores: RecordingStores,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// Recording settings.
    pub settings: RecordingSettings,
    /// The database.
    pub store: Arc<dyn Database>,
    /// Records recording commands.
    pub executor: CommandExecutor,
    /// Signs one-time links and playback cookies.
    key: PlaybackKey,
    public_url: OnceLock<String>,
    /// Serializes the file work on one recording in this process (an
    /// import, a publish and an unpublish of the same recording must not
    /// interleave their copies and deletes in an object store).
    file_locks: Box<[tokio::sync::Mutex<()>]>,
}

impl fmt::Debug for RecordingService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingService")
            .field("store", &self.stores.default_store().describe())
            .field("spool_dir", &self.spool_dir)
            .field("public_url", &self.public_url.get())
            .finish_non_exhaustive()
    }
}

impl RecordingService {
    /// Creates the tree and spool if missing and loads (or generates and
    /// stores) the playback key.
    pub async fn open(
        settings: RecordingSettings,
        store: Arc<dyn Database>,
        executor: CommandExecutor,
    ) -> Result<Self, RecordingSetupError> {
        let location = match &settings.store {
            Some(url) => StoreLocation::parse(url)?,
            None => StoreLocation::Dir(settings.dir.clone()),
        };
        std::fs::create_dir_all(&settings.dir).map_err(|source| RecordingSetupError::Spool {
            path: settings.dir.clone(),
            source,
        })?;
        let default = RecordingStore::open(&location, &settings.s3, &settings.dir)?;
        let stores = RecordingStores::new(default, settings.s3.clone(), settings.dir.clone());
        let spool_dir = settings.spool_dir.clone();
        std::fs::create_dir_all(&spool_dir).map_err(|source| RecordingSetupError::Spool {
            path: spool_dir.clone(),
            source,
        })?;
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let stored = store
            .setting_or_insert(PLAYBACK_KEY_SETTING, &fresh)
            .await?;
        let bytes =
            hex::decode(stored.trim()).map_err(|e| RecordingSetupError::Key(e.to_string()))?;
        let key = PlaybackKey::new(&bytes).map_err(|e| RecordingSetupError::Key(e.to_string()))?;
        let public_url = OnceLock::new();
        if let Some(url) = &settings.public_url {
            let _ = public_url.set(url.trim_end_matches('/').to_owned());
        }
        Ok(Self {
            stores,
            spool_dir,
            settings,
            store,
            executor,
            key,
            public_url,
            file_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        })
    }

    /// Sets the public URL from the bound address when none is configured.
    pub fn bind_public_url(&self, url: String) {
        if self.settings.public_url.is_none() {
            let _ = self.public_url.set(url);
        }
    }

    /// Switchboard's public URL (no trailing `/`).
    pub fn public_url(&self) -> &str {
        self.public_url
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:8090")
    }

    /// The playback key.
    pub fn key(&self) -> &PlaybackKey {
        &self.key
    }

    /// A one-time link to a protected recording's format, valid for the
    /// configured time.
    pub fn protected_link(&self, record_id: &RecordId, format: &str) -> String {
        let expires = protected::unix_now() + self.settings.link_ttl_secs;
        let token = protected::mint_link_token(&self.key, record_id, expires);
        format!("{}/recording-link/{format}/{token}", self.public_url())
    }

    /// The deployment's store (tenants may have their own: see
    /// [`RecordingStores`]).
    pub fn files(&self) -> &RecordingStore {
        self.stores.default_store()
    }

    /// Holds the file lock of a recording (striped over 64 locks).
    pub async fn lock_files(&self, record_id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        record_id.hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % 64).unwrap_or(0);
        self.file_locks[stripe].lock().await
    }

    /// The nonce store every instance shares.
    pub fn used_tokens(&self) -> DbUsedTokens {
        DbUsedTokens(self.store.clone())
    }

    /// The spool as the settings describe it (settle time, what happens to
    /// imported archives).
    pub fn spool(&self) -> Spool {
        Spool::new(SpoolConfig {
            dir: self.spool_dir.clone(),
            settle: Duration::from_secs_f64(self.settings.spool_settle_secs.max(0.0)),
            keep_done: self.settings.keep_done,
        })
    }
}

/// [`UsedTokens`] in the database (`used_tokens`), so a link works once
/// across every instance.
#[derive(Debug, Clone)]
pub struct DbUsedTokens(pub Arc<dyn Database>);

impl UsedTokens for DbUsedTokens {
    fn claim(
        &self,
        nonce: &str,
        expires_at: u64,
        now: u64,
    ) -> impl std::future::Future<Output = Result<bool, UsedTokensError>> + Send {
        let store = self.0.clone();
        let nonce = nonce.to_owned();
        async move {
            store
                .claim_token(&nonce, expires_at, now)
                .await
                .map_err(|err| UsedTokensError(err.to_string()))
        }
    }
}
