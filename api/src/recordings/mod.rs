//! Recordings on the HTTP side: the service that owns the recording tree,
//! the importer (spool watcher and upload endpoint), playback serving with
//! protected links, and recording-ready callbacks.
//!
//! The importer is a plain async function, [`import::import_archive`], run as
//! apalis jobs that the spool scanner queues ([`jobs`]).

pub mod bench;
pub mod callbacks;
pub mod import;
pub mod jobs;
pub mod listing;
pub mod playback;
pub mod text_tracks;
pub mod upload;

use crate::config::{RecordingSettings, Settings};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use switchboard_app::ports::prelude::*;
use switchboard_recordings::protected::{self, UsedTokens, UsedTokensError};
use switchboard_recordings::{Layout, PlaybackKey, RecordId};
use switchboard_store::Store;
use thiserror::Error;

/// The settings key of the playback key generated at first start (shared by
/// every instance on the database).
const PLAYBACK_KEY_SETTING: &str = "recordings_playback_key";

/// Why the recording service could not start.
#[derive(Debug, Error)]
pub enum RecordingSetupError {
    /// The recording tree could not be created.
    #[error(transparent)]
    Layout(#[from] switchboard_recordings::LayoutError),
    /// The spool could not be created.
    #[error("cannot create the spool directory {path}: {source}")]
    Spool {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The playback key could not be read or stored.
    #[error("cannot read or store the playback key: {0}")]
    Store(#[from] switchboard_app::StoreError),
    /// The stored playback key is unusable.
    #[error("the stored playback key is unusable: {0}")]
    Key(String),
}

/// Everything recordings need: the tree, settings, key, database.
pub struct RecordingService {
    /// The recording tree.
    pub layout: Layout,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// Recording settings.
    pub settings: RecordingSettings,
    /// The database.
    pub store: Store,
    /// Records recording commands.
    pub executor: switchboard_app::CommandExecutor,
    /// Signs one-time links and playback cookies.
    key: PlaybackKey,
    public_url: OnceLock<String>,
    configured_public_url: Option<String>,
    /// Signs recording-ready callbacks of the default tenant.
    primary_secret: String,
    /// Client for callbacks.
    pub http: reqwest::Client,
}

impl fmt::Debug for RecordingService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingService")
            .field("root", &self.layout.root())
            .field("spool_dir", &self.spool_dir)
            .field("public_url", &self.public_url.get())
            .finish_non_exhaustive()
    }
}

impl RecordingService {
    /// Creates the tree and spool if missing and loads (or generates and
    /// stores) the playback key.
    pub async fn open(
        settings: &Settings,
        store: Store,
        executor: switchboard_app::CommandExecutor,
        primary_secret: String,
    ) -> Result<Self, RecordingSetupError> {
        let layout = Layout::create(settings.recordings_dir())?;
        let spool_dir = settings.spool_dir();
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
        switchboard_workers::backend::install_crypto_provider();
        let public_url = OnceLock::new();
        if let Some(url) = &settings.public_url {
            let _ = public_url.set(url.trim_end_matches('/').to_owned());
        }
        Ok(Self {
            layout,
            spool_dir,
            settings: settings.recordings.clone(),
            store,
            executor,
            key,
            public_url,
            configured_public_url: settings.public_url.clone(),
            primary_secret,
            // Callback URLs come from front-ends: never follow a redirect
            // somewhere else.
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        })
    }

    /// Sets the public URL from the bound address when none is configured.
    pub fn bind_public_url(&self, url: String) {
        if self.configured_public_url.is_none() {
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

    /// The secret that signs the default tenant's callbacks.
    pub(crate) fn primary_secret(&self) -> &str {
        &self.primary_secret
    }

    /// A one-time link to a protected recording's format, valid for the
    /// configured time.
    pub fn protected_link(&self, record_id: &RecordId, format: &str) -> String {
        let expires = protected::unix_now() + self.settings.link_ttl_secs;
        let token = protected::mint_link_token(&self.key, record_id, expires);
        format!("{}/recording-link/{format}/{token}", self.public_url())
    }

    /// The nonce store every instance shares.
    pub fn used_tokens(&self) -> DbUsedTokens {
        DbUsedTokens(self.store.clone())
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn protected_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// [`UsedTokens`] in the database (`used_tokens`), so a link works once
/// across every instance.
#[derive(Debug, Clone)]
pub struct DbUsedTokens(pub Store);

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
