//! Moving recordings between stores (`switchboard recordings
//! migrate-store`): each recording of the source store is copied and
//! verified object by object ([`switchboard_recordings::migrate`]), and,
//! when asked, removed from the source once its copy is verified. Running
//! it again after an interruption skips what is already copied.

use super::RecordingService;
use crate::error::StoreError;
use std::collections::BTreeSet;
use switchboard_domain::ids::TenantId;
use switchboard_domain::recording_ids::RecordId;
use switchboard_recordings::migrate::{Copied, copy_recording};
use switchboard_recordings::{RecordingStore, Visibility};

/// What happened to one recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStep {
    /// Its position (from 1).
    pub index: usize,
    /// How many recordings the migration covers.
    pub total: usize,
    /// The recording.
    pub record_id: RecordId,
    /// What was copied, or why it failed.
    pub outcome: Result<Copied, String>,
    /// Whether its source copy was removed.
    pub source_removed: bool,
}

/// What a whole migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Recordings copied and verified.
    pub migrated: usize,
    /// Recordings that failed (named in the steps).
    pub failed: usize,
    /// Recordings skipped (another tenant's, or deleted in the log).
    pub skipped: usize,
    /// Objects copied now, their bytes, and objects already there.
    pub copied: Copied,
}

/// Why a migration could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The source store could not be listed.
    #[error("cannot list the source store: {0}")]
    Source(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RecordingService {
    /// Copies the recordings in `from` (only `tenant`'s, when given) to
    /// `to`, verifying each object; `delete_source` removes a recording
    /// from `from` once its copy is verified. Recordings the log holds as
    /// deleted are skipped. `progress` hears of each recording.
    pub async fn migrate_store(
        &self,
        from: &RecordingStore,
        to: &RecordingStore,
        tenant: Option<&TenantId>,
        delete_source: bool,
        mut progress: impl FnMut(&MigrationStep),
    ) -> Result<MigrationReport, MigrateError> {
        let mut ids = BTreeSet::new();
        for visibility in [Visibility::Published, Visibility::Unpublished] {
            match from.record_ids(visibility).await {
                Ok(found) => ids.extend(found),
                Err(err) => return Err(MigrateError::Source(err.to_string())),
            }
        }
        let mut report = MigrationReport::default();
        let mut chosen = Vec::new();
        for id in ids {
            let recording = self.store.recording(id.as_str()).await?;
            let wanted = match (&recording, tenant) {
                (Some(recording), _) if recording.state == "deleted" => false,
                (Some(recording), Some(tenant)) => &recording.tenant == tenant,
                (None, Some(_)) => false,
                (_, None) => true,
            };
            if wanted {
                chosen.push(id);
            } else {
                report.skipped += 1;
            }
        }
        let total = chosen.len();
        for (index, id) in chosen.into_iter().enumerate() {
            let before = from.locate(&id).await.ok();
            let outcome = copy_recording(from, to, &id)
                .await
                .map_err(|err| err.to_string());
            let mut source_removed = false;
            match &outcome {
                Ok(copied) => {
                    report.migrated += 1;
                    report.copied.objects += copied.objects;
                    report.copied.bytes += copied.bytes;
                    report.copied.present += copied.present;
                    // A format that arrived in the source meanwhile was not
                    // copied: then the source stays (the next run copies it).
                    let unchanged = from.locate(&id).await.ok() == before;
                    if delete_source && !unchanged {
                        tracing::warn!(record_id = %id, "the recording changed in the source during its copy; source kept, run the migration again");
                    }
                    if delete_source && unchanged {
                        match from.delete(&id).await {
                            Ok(_) => source_removed = true,
                            Err(err) => {
                                tracing::warn!(record_id = %id, error = %err, "copied and verified, but the source could not be removed")
                            }
                        }
                    }
                }
                Err(_) => report.failed += 1,
            }
            progress(&MigrationStep {
                index: index + 1,
                total,
                record_id: id,
                outcome,
                source_removed,
            });
        }
        Ok(report)
    }
}
