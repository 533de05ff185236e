//! Which store a tenant's recordings are in: the deployment's
//! (`[recordings] store`, else the tree under `[recordings] dir`), or the
//! tenant's own (`switchboard tenants recordings-store`).
//!
//! A tenant's setting applies to new recordings; a recording made before a
//! change is still found in the deployment's store (operations look in the
//! tenant's store first, then there), and `recordings migrate-store` moves
//! old recordings. Tenants' settings are re-read at most once a second, so
//! a change made with the CLI reaches a running instance within a second.

use crate::ports::Database;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchboard_domain::ids::TenantId;
use switchboard_recordings::{LayoutError, RecordingStore, S3Settings, StoreLocation};

/// How long tenants' store settings are trusted before being read again.
const REFRESH: Duration = Duration::from_secs(1);

/// The deployment's store, the tenants' own, opened once each.
pub struct RecordingStores {
    default: RecordingStore,
    s3: S3Settings,
    local_dir: PathBuf,
    opened: Mutex<HashMap<StoreLocation, RecordingStore>>,
    tenants: Mutex<Option<(Instant, HashMap<String, String>)>>,
}

impl std::fmt::Debug for RecordingStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingStores")
            .field("default", &self.default.describe())
            .finish_non_exhaustive()
    }
}

impl RecordingStores {
    /// Stores with `default` for tenants without their own; others are
    /// opened with `s3` and stage archives under `local_dir`.
    pub fn new(default: RecordingStore, s3: S3Settings, local_dir: PathBuf) -> Self {
        Self {
            default,
            s3,
            local_dir,
            opened: Mutex::new(HashMap::new()),
            tenants: Mutex::new(None),
        }
    }

    /// The deployment's store.
    pub fn default_store(&self) -> &RecordingStore {
        &self.default
    }

    /// The S3 settings stores are opened with.
    pub fn s3_settings(&self) -> &S3Settings {
        &self.s3
    }

    /// Opens (once) the store written as `url`.
    pub fn open(&self, url: &str) -> Result<RecordingStore, StoreOpenError> {
        let location = StoreLocation::parse(url).map_err(|err| StoreOpenError(err.to_string()))?;
        let mut opened = self.opened.lock().expect("stores lock");
        if let Some(store) = opened.get(&location) {
            return Ok(store.clone());
        }
        let store = RecordingStore::open(&location, &self.s3, &self.local_dir)
            .map_err(|err: LayoutError| StoreOpenError(err.to_string()))?;
        opened.insert(location, store.clone());
        Ok(store)
    }

    async fn tenant_urls(&self, db: &dyn Database) -> HashMap<String, String> {
        if let Some((at, urls)) = self.tenants.lock().expect("tenants lock").as_ref()
            && at.elapsed() < REFRESH
        {
            return urls.clone();
        }
        match db.tenants().await {
            Ok(tenants) => {
                let urls: HashMap<String, String> = tenants
                    .into_iter()
                    .filter_map(|t| t.recordings_store.map(|url| (t.name, url)))
                    .collect();
                *self.tenants.lock().expect("tenants lock") = Some((Instant::now(), urls.clone()));
                urls
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read tenants' recordings stores; using the last known");
                self.tenants
                    .lock()
                    .expect("tenants lock")
                    .as_ref()
                    .map(|(_, urls)| urls.clone())
                    .unwrap_or_default()
            }
        }
    }

    /// Where `tenant`'s new recordings go. A tenant store that cannot be
    /// opened is an error (never silently the default: its recordings
    /// would land where the operator did not want them).
    pub async fn for_tenant(
        &self,
        db: &dyn Database,
        tenant: &TenantId,
    ) -> Result<RecordingStore, StoreOpenError> {
        match self.tenant_urls(db).await.get(&tenant.0) {
            Some(url) => self.open(url),
            None => Ok(self.default.clone()),
        }
    }

    /// Where `tenant`'s existing recordings may be: its own store first,
    /// then the deployment's. A tenant store that cannot be opened is an
    /// error, never silently skipped (a delete would miss its files).
    pub async fn candidates(
        &self,
        db: &dyn Database,
        tenant: &TenantId,
    ) -> Result<Vec<RecordingStore>, StoreOpenError> {
        let own = self.for_tenant(db, tenant).await?;
        let mut stores = vec![own];
        if stores[0].describe() != self.default.describe() {
            stores.push(self.default.clone());
        }
        Ok(stores)
    }

    /// The deployment's store and every tenant's own that opens.
    pub async fn all(&self, db: &dyn Database) -> Vec<RecordingStore> {
        let mut stores = vec![self.default.clone()];
        let mut urls: Vec<String> = self.tenant_urls(db).await.into_values().collect();
        urls.sort();
        urls.dedup();
        for url in urls {
            match self.open(&url) {
                Ok(store) if stores.iter().all(|s| s.describe() != store.describe()) => {
                    stores.push(store)
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(store = %url, error = %err, "cannot open a recordings store")
                }
            }
        }
        stores
    }
}

/// A recordings store could not be opened (a bad URL, S3 settings missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreOpenError(pub String);
