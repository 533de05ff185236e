//! The recording calls that change recordings: publish, unpublish, delete,
//! and metadata or protection updates. Each sees and changes only the
//! requesting tenant's recordings; another tenant's record id is as unknown
//! as a made-up one. The facade parses the parameters and renders the
//! answers.

use super::RecordingService;
use crate::StoreError;
use crate::executor::CommandError;
use crate::records::RecordingRecord;
use std::collections::BTreeMap;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::TenantId;
use switchboard_domain::recording::{Recording, RecordingCommand, recording_stream};
use switchboard_domain::recording_ids::{FormatName, RecordId};
use switchboard_recordings::{LayoutError, Visibility};
use thiserror::Error;

/// Why a recording call did not go through, as the facade renders it.
#[derive(Debug, Error)]
pub enum RecordingCallError {
    /// No `recordID` was given.
    #[error("You must specify a recordID.")]
    MissingRecordId,
    /// None of the ids names a live recording of the tenant.
    #[error("no recordings found")]
    NotFound,
    /// A command was refused.
    #[error("{0}")]
    Rejected(String),
    /// The recording files could not be changed.
    #[error("The recording files could not be changed; please retry.")]
    Files,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an update changes (absent or empty: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingUpdate {
    /// Metadata keys to set (lower-cased, without `meta_`).
    pub set: BTreeMap<String, String>,
    /// Metadata keys to remove.
    pub remove: Vec<String>,
    /// Protect or unprotect.
    pub protect: Option<bool>,
}

/// A change to a recording's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TreeOp {
    /// Move to the published tree.
    Publish,
    /// Move to the unpublished tree.
    Unpublish,
    /// Remove.
    Delete,
}

impl RecordingService {
    /// getRecordings: a page of the recordings a query names (the query
    /// carries the tenant).
    pub async fn find(
        &self,
        query: &crate::records::RecordingQuery,
    ) -> Result<crate::records::RecordingPage, StoreError> {
        self.store.find_recordings(query).await
    }

    /// The tenant's live recording of one record id (`None`: unknown, not
    /// a record id, deleted, or another tenant's).
    pub async fn own_recording(
        &self,
        tenant: &TenantId,
        raw_id: &str,
    ) -> Result<Option<(RecordId, RecordingRecord)>, StoreError> {
        let Ok(id) = RecordId::parse(raw_id.trim()) else {
            return Ok(None);
        };
        Ok(self
            .store
            .recording(id.as_str())
            .await?
            .filter(|recording| recording.tenant == *tenant && recording.state != "deleted")
            .map(|recording| (id, recording)))
    }

    /// The tenant's live recordings among `ids` (each once); `NotFound`
    /// when none is.
    pub async fn own_recordings(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<Vec<RecordingRecord>, RecordingCallError> {
        if ids.is_empty() {
            return Err(RecordingCallError::MissingRecordId);
        }
        let mut found: Vec<RecordingRecord> = Vec::new();
        for id in ids {
            if RecordId::parse(id).is_err() {
                continue;
            }
            if let Some(recording) = self.store.recording(id).await?
                && recording.tenant == *tenant
                && recording.state != "deleted"
                && !found.iter().any(|r| r.record_id == recording.record_id)
            {
                found.push(recording);
            }
        }
        if found.is_empty() {
            return Err(RecordingCallError::NotFound);
        }
        Ok(found)
    }

    /// `publishRecordings`: records it, then moves the formats in the tree.
    /// A move that fails leaves the tree behind the log (logged); the next
    /// [`reconcile_tree`](super::import::reconcile_tree) moves it, so the
    /// log never says what the tree cannot serve for long, and a recorded
    /// change is never answered as failed.
    pub async fn set_published(
        &self,
        tenant: &TenantId,
        ids: &[String],
        publish: bool,
        metadata: &EventMetadata,
    ) -> Result<(), RecordingCallError> {
        for recording in self.own_recordings(tenant, ids).await? {
            self.run(
                &recording.record_id,
                &RecordingCommand::SetPublished(publish),
                metadata,
            )
            .await?;
            let op = if publish {
                TreeOp::Publish
            } else {
                TreeOp::Unpublish
            };
            if self
                .on_disk(&recording.record_id, &recording.tenant, op)
                .await
                .is_err()
            {
                tracing::warn!(record_id = %recording.record_id, "recorded, but its files were not moved; the tree is reconciled at the next start");
            }
        }
        Ok(())
    }

    /// `deleteRecordings`: records the deletion, then removes the files and
    /// text tracks (a failure to record it loses nothing; a failure to
    /// remove files leaves files, never a recording without them).
    pub async fn delete(
        &self,
        tenant: &TenantId,
        ids: &[String],
        metadata: &EventMetadata,
    ) -> Result<(), RecordingCallError> {
        for recording in self.own_recordings(tenant, ids).await? {
            self.run(&recording.record_id, &RecordingCommand::Delete, metadata)
                .await?;
            self.on_disk(&recording.record_id, &recording.tenant, TreeOp::Delete)
                .await?;
            super::text_tracks::delete_all(self, &recording.record_id).await;
        }
        Ok(())
    }

    /// `updateRecordings`: metadata and protection.
    pub async fn update(
        &self,
        tenant: &TenantId,
        ids: &[String],
        update: &RecordingUpdate,
        metadata: &EventMetadata,
    ) -> Result<(), RecordingCallError> {
        for recording in self.own_recordings(tenant, ids).await? {
            if !update.set.is_empty() || !update.remove.is_empty() {
                let command = RecordingCommand::UpdateMetadata {
                    set: update.set.clone(),
                    remove: update.remove.clone(),
                };
                self.run(&recording.record_id, &command, metadata).await?;
            }
            if let Some(protect) = update.protect {
                self.run(
                    &recording.record_id,
                    &RecordingCommand::SetProtected(protect),
                    metadata,
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn run(
        &self,
        record_id: &str,
        command: &RecordingCommand,
        metadata: &EventMetadata,
    ) -> Result<(), RecordingCallError> {
        match self
            .executor
            .execute::<Recording>(&recording_stream(record_id), command, metadata)
            .await
        {
            Ok(_) => Ok(()),
            Err(CommandError::Rejected(err)) => Err(RecordingCallError::Rejected(err.to_string())),
            Err(CommandError::Store(err)) => Err(err.into()),
        }
    }

    /// Changes the recording's files in the store they are in (the
    /// tenant's, else the deployment's); a recording in no store is fine
    /// (the events still record the intent).
    pub(super) async fn on_disk(
        &self,
        record_id: &str,
        tenant: &TenantId,
        op: TreeOp,
    ) -> Result<(), RecordingCallError> {
        let Ok(id) = RecordId::parse(record_id) else {
            return Ok(());
        };
        let _files = self.lock_files(record_id).await;
        let stores = match self.stores.candidates(self.store.as_ref(), tenant).await {
            Ok(stores) => stores,
            Err(err) => {
                tracing::error!(record_id, error = %err, "recording files could not be changed: the tenant's store cannot be opened");
                return Err(RecordingCallError::Files);
            }
        };
        // Every store that holds some of it (a copy left by migrate-store,
        // a format imported after the tenant's store changed).
        let mut result: Result<Vec<FormatName>, LayoutError> =
            Err(LayoutError::NotFound(id.clone()));
        for store in stores {
            let done = match op {
                TreeOp::Publish => store.set_visibility(&id, Visibility::Published).await,
                TreeOp::Unpublish => store.set_visibility(&id, Visibility::Unpublished).await,
                TreeOp::Delete => store.delete(&id).await,
            };
            match (done, result.as_mut()) {
                (Err(LayoutError::NotFound(_)), _) => {}
                (Ok(formats), Ok(all)) => all.extend(formats),
                (Ok(formats), Err(_)) => result = Ok(formats),
                (Err(err), _) => {
                    result = Err(err);
                    break;
                }
            }
        }
        match result {
            Ok(_) | Err(LayoutError::NotFound(_)) => Ok(()),
            Err(err) => {
                tracing::error!(record_id, error = %err, "recording files could not be changed");
                Err(RecordingCallError::Files)
            }
        }
    }
}
