//! Importing recording archives: extract safely into staging, install into
//! the tree, record the events, announce the recording.
//!
//! [`import_archive`] is one job (idempotent: the same archive twice changes
//! nothing; a second format of a recording is merged in); the import jobs
//! of `switchboard-workers` queue the spool's archives and run
//! [`import_spooled`] for each. Bad archives go to `<spool>/failed/` with a
//! `.reason.txt` beside them and a warning in the log (`recording archive
//! refused`).

use super::RecordingService;
use crate::callbacks::Delivery;
use crate::executor::CommandError;
use crate::records::{CallbackKind, CallbackSigning, MeetingRunRecord, NewCallback};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::TenantId;
use switchboard_domain::recording::{
    BreakoutOf, PreviewImage, RecordingCommand, RecordingDetails, RecordingEvent, RecordingFormat,
};
use switchboard_domain::recording_ids::RecordId;
use switchboard_recordings::archive;
use switchboard_recordings::layout::Visibility;
use switchboard_recordings::spool::{self, Spool, SpoolConfig};
use switchboard_recordings::{ExtractedRecording, FormatDir};
use thiserror::Error;

/// Why an import did not go through.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The archive itself is bad: move it aside, never retry.
    #[error("bad archive: {0}")]
    BadArchive(String),
    /// The disk or the database failed: keep the archive and retry.
    #[error("import failed, will retry: {0}")]
    Retry(String),
}

/// Why a spooled archive must be imported again later (the disk or the
/// database failed); the archive stays in the spool.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct RetryLater(pub String);

/// Why a published tree could not be imported at all (a recording that
/// cannot be imported is a problem of the report instead).
#[derive(Debug, Error)]
pub enum TreeImportError {
    /// The tree could not be read.
    #[error(transparent)]
    Scan(#[from] switchboard_recordings::LayoutError),
    /// A blocking task failed.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The recording.
    pub record_id: String,
    /// Its owner.
    pub tenant: TenantId,
    /// The events recorded (none when the archive changed nothing).
    pub events: Vec<RecordingEvent>,
}

impl ImportOutcome {
    /// Whether this import created the recording.
    pub fn created(&self) -> bool {
        self.events
            .iter()
            .any(|event| matches!(event, RecordingEvent::RecordingImported { .. }))
    }
}

fn join_error(err: tokio::task::JoinError) -> ImportError {
    ImportError::Retry(format!("import task failed: {err}"))
}

/// Imports one archive file (`<recordID>.tar` or `.tar.gz`).
pub async fn import_archive(
    service: &RecordingService,
    archive_path: &Path,
) -> Result<ImportOutcome, ImportError> {
    let staging = service.files().staging_dir();
    let path = archive_path.to_path_buf();
    let limits = service.settings.archive_limits;
    let extracted =
        tokio::task::spawn_blocking(move || archive::extract_file(&path, &staging, &limits))
            .await
            .map_err(join_error)?
            .map_err(|err| {
                if err.is_bad_archive() {
                    ImportError::BadArchive(err.to_string())
                } else {
                    ImportError::Retry(err.to_string())
                }
            })?;
    import_extracted(service, extracted, "importer").await
}

/// Why an uploaded archive was not imported (see [`import_upload`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UploadError {
    /// The archive is bad: it was moved to `<spool>/failed/`, with its
    /// reason beside it.
    #[error("{0}")]
    Refused(String),
    /// The import must be retried: the archive now waits in the spool for
    /// the importer.
    #[error("the import is queued in the spool")]
    Queued,
    /// The import must be retried, but the archive could not be queued.
    #[error("the upload could not be queued")]
    NotQueued,
}

/// Imports an uploaded archive of `record_id` (a `.tar` or `.tar.gz` file
/// the upload was streamed to, under the spool): extracted with the
/// importer's safety checks (it must hold `record_id` only) and imported at
/// once. The file is removed once imported, moved to `<spool>/failed/` when
/// bad, and moved into the spool as `<recordID>.tar` when the import must
/// be retried.
pub async fn import_upload(
    service: &RecordingService,
    upload: &Path,
    record_id: &RecordId,
) -> Result<ImportOutcome, UploadError> {
    let staging = service.files().staging_dir();
    let path = upload.to_path_buf();
    let expected = record_id.clone();
    let limits = service.settings.archive_limits;
    let extracted = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|source| archive::ArchiveError::Io {
            action: "open upload",
            path: path.clone(),
            source,
        })?;
        archive::extract_reader(file, Some(&expected), &staging, &limits)
    })
    .await;
    let result = match extracted {
        Ok(Ok(extracted)) => import_extracted(service, extracted, "upload").await,
        Ok(Err(err)) if err.is_bad_archive() => Err(ImportError::BadArchive(err.to_string())),
        Ok(Err(err)) => Err(ImportError::Retry(err.to_string())),
        Err(err) => Err(ImportError::Retry(err.to_string())),
    };
    let spool = Spool::new(SpoolConfig::new(service.spool_dir.clone()));
    match result {
        Ok(outcome) => {
            let _ = tokio::fs::remove_file(upload).await;
            Ok(outcome)
        }
        Err(ImportError::BadArchive(reason)) => {
            match spool.fail(upload, &reason) {
                Ok(moved) => {
                    tracing::warn!(record_id = %record_id, moved_to = %moved.display(), %reason, "recording archive refused")
                }
                Err(err) => {
                    tracing::error!(record_id = %record_id, %reason, error = %err, "recording archive refused and could not be moved aside")
                }
            }
            Err(UploadError::Refused(reason))
        }
        Err(ImportError::Retry(reason)) => {
            let queued: PathBuf = service.spool_dir.join(format!("{record_id}.tar"));
            tracing::warn!(record_id = %record_id, %reason, "upload import failed; queued in the spool");
            match tokio::fs::rename(upload, &queued).await {
                Ok(()) => Err(UploadError::Queued),
                Err(_) => Err(UploadError::NotQueued),
            }
        }
    }
}

/// The size of the files under `dir`, bytes (links are not followed).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|meta| meta.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Converts a format's metadata into the event's shape (its size read
/// from its files: blocking).
fn format_of(dir: &FormatDir) -> RecordingFormat {
    let playback = &dir.metadata.playback;
    RecordingFormat {
        bytes: dir_bytes(&dir.dir),
        format: dir.format.to_string(),
        url: playback.link.clone(),
        processing_time_ms: playback.processing_time_ms.unwrap_or(0),
        length_ms: playback.duration_ms.unwrap_or(0),
        images: playback
            .images
            .iter()
            .map(|image| PreviewImage {
                url: image.url.clone(),
                width: image.width,
                height: image.height,
                alt: image.alt.clone(),
            })
            .collect(),
    }
}

/// Installs an extracted recording and records it.
pub async fn import_extracted(
    service: &RecordingService,
    extracted: ExtractedRecording,
    actor: &str,
) -> Result<ImportOutcome, ImportError> {
    let record_id = extracted.record_id().to_string();
    let Some(first) = extracted.formats().first().cloned() else {
        return Err(ImportError::BadArchive("no formats".into()));
    };
    let dirs = extracted.formats().to_vec();
    let formats: Vec<RecordingFormat> =
        tokio::task::spawn_blocking(move || dirs.iter().map(format_of).collect())
            .await
            .map_err(|err| ImportError::Retry(format!("sizing the formats failed: {err}")))?;
    let owner = owner(service, &record_id, &first.metadata).await?;
    let store = service
        .stores
        .for_tenant(service.store.as_ref(), &owner.1)
        .await
        .map_err(|err| ImportError::Retry(err.to_string()))?;
    let files = service.lock_files(&record_id).await;
    let installed = store
        .install_all(&extracted)
        .await
        .map_err(|err| ImportError::Retry(err.to_string()))?;
    drop(files);
    // Removing the staged copy is file work: off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || drop(extracted)).await;
    let published = installed
        .first()
        .is_none_or(|i| i.visibility == Visibility::Published);
    record_import(
        service, &record_id, &first, formats, published, owner, actor,
    )
    .await
}

/// Records an installed recording's formats (used by the importer and by
/// `recordings import-dir`), owned as [`owner`] says.
pub async fn record_import(
    service: &RecordingService,
    record_id: &str,
    first: &FormatDir,
    formats: Vec<RecordingFormat>,
    published: bool,
    (run, tenant): (Option<MeetingRunRecord>, TenantId),
    actor: &str,
) -> Result<ImportOutcome, ImportError> {
    let meta = &first.metadata;
    let metadata: BTreeMap<String, String> = meta
        .metadata
        .iter()
        .map(|(key, value)| (key.to_ascii_lowercase(), value.clone()))
        .collect();
    let details = RecordingDetails {
        tenant: tenant.clone(),
        // The run's meetingID, never one the archive claims (issue 15.A7).
        meeting_id: run
            .as_ref()
            .map(|run| run.meeting_id.clone())
            .unwrap_or_else(|| meta.meeting_id.clone()),
        internal_meeting_id: meta.internal_meeting_id.clone(),
        name: meta.name.clone(),
        is_breakout: meta.is_breakout,
        published,
        start_time_ms: i64::try_from(meta.start_time_ms).unwrap_or(i64::MAX),
        end_time_ms: i64::try_from(meta.end_time_ms).unwrap_or(i64::MAX),
        participants: meta.participants,
        metadata,
        breakout: meta.parent_meeting_id.clone().map(|parent_id| BreakoutOf {
            parent_id,
            sequence: meta.breakout_sequence,
        }),
        breakout_rooms: meta.breakout_rooms.clone(),
    };
    record_details(service, record_id, details, formats, run, tenant, actor).await
}

/// The run a recording was made in (if Switchboard knows it) and the tenant
/// that owns the recording.
pub async fn owner(
    service: &RecordingService,
    record_id: &str,
    meta: &switchboard_recordings::RecordingMetadata,
) -> Result<(Option<MeetingRunRecord>, TenantId), ImportError> {
    let store = &service.store;
    let run = store
        .meeting_run(record_id)
        .await
        .map_err(|err| ImportError::Retry(err.to_string()))?;
    // A breakout room BBB opened belongs to the tenant whose run opened it
    // (only the owner comes from the parent: the parent's callback is not
    // the breakout's).
    let parent_run = match (&run, &meta.parent_meeting_id) {
        (None, Some(parent)) => store
            .meeting_run(parent)
            .await
            .map_err(|err| ImportError::Retry(err.to_string()))?,
        _ => None,
    };
    // A run the log does not know belongs to nobody while tenants exist:
    // the recording is kept but listed to no front-end (issue 15.A1).
    let tenant = match run.as_ref().or(parent_run.as_ref()) {
        Some(run) => run.tenant.clone(),
        None => {
            let tenants = store
                .tenants()
                .await
                .map_err(|err| ImportError::Retry(err.to_string()))?;
            let owner = TenantId::owner_of_unknown_run(!tenants.is_empty());
            tracing::warn!(record_id, owner = %owner, "recording of a run Switchboard does not know");
            owner
        }
    };
    Ok((run, tenant))
}

/// Records an import's details and formats, with the recording-ready
/// callback the run owes.
async fn record_details(
    service: &RecordingService,
    record_id: &str,
    details: RecordingDetails,
    formats: Vec<RecordingFormat>,
    run: Option<MeetingRunRecord>,
    tenant: TenantId,
    actor: &str,
) -> Result<ImportOutcome, ImportError> {
    let command = RecordingCommand::Import { details, formats };
    let metadata = EventMetadata {
        actor: actor.to_owned(),
        request_id: None,
        tenant: Some(tenant.to_string()),
    };
    // The recording-ready callback is owed once, when the recording is
    // first imported: written with that event, in its transaction.
    let ready = run.as_ref().and_then(|run| {
        let url = run.recording_ready_url.clone()?;
        Some(recording_ready_delivery(
            run,
            url,
            tenant.clone(),
            record_id,
            service.settings.callback_retry_for,
        ))
    });
    let callbacks_for = |events: &[RecordingEvent]| -> Vec<NewCallback> {
        let imported = events
            .iter()
            .any(|event| matches!(event, RecordingEvent::RecordingImported { .. }));
        ready.iter().filter(|_| imported).cloned().collect()
    };
    let executed = service
        .executor
        .execute_with_callbacks::<switchboard_domain::recording::Recording>(
            &switchboard_domain::recording::recording_stream(record_id),
            &command,
            &metadata,
            &callbacks_for,
        )
        .await
        .map_err(|err| match err {
            CommandError::Rejected(err) => ImportError::BadArchive(err.to_string()),
            CommandError::Store(err) => ImportError::Retry(err.to_string()),
        })?;
    let outcome = ImportOutcome {
        record_id: record_id.to_owned(),
        tenant,
        events: executed.events,
    };
    if outcome.created() {
        tracing::info!(record_id, tenant = %outcome.tenant, "recording imported");
    } else if !outcome.events.is_empty() {
        tracing::info!(record_id, "recording format added");
    }
    Ok(outcome)
}

/// The recording-ready callback of a run's recording: `POST
/// signed_parameters=<JWT HS256 {meeting_id, record_id}>` to `url`, signed
/// with the secret the front-end created the meeting with.
fn recording_ready_delivery(
    run: &MeetingRunRecord,
    url: String,
    tenant: TenantId,
    record_id: &str,
    retry_for: Duration,
) -> NewCallback {
    Delivery {
        kind: CallbackKind::RecordingReady,
        tenant,
        meeting_id: run.meeting_id.clone(),
        method: "POST",
        url,
        content_type: Some("application/x-www-form-urlencoded"),
        body: None,
        signing: CallbackSigning::RecordingReady {
            secret: run
                .callbacks
                .as_ref()
                .and_then(|callbacks| callbacks.signed_with.clone()),
            meeting_id: run.meeting_id.clone(),
            record_id: record_id.to_owned(),
        },
    }
    .into_outbox(
        format!("recording-ready-{record_id}"),
        chrono::Utc::now().timestamp_millis(),
        retry_for,
    )
}

/// Runs [`import_archive`] up to the configured attempts with doubling
/// backoff; a bad archive is not retried.
pub async fn import_with_retry(
    service: &RecordingService,
    archive_path: &Path,
) -> Result<ImportOutcome, ImportError> {
    let mut delay = Duration::from_millis(service.settings.retry_base_ms);
    let attempts = service.settings.import_attempts.max(1);
    for attempt in 1..=attempts {
        match import_archive(service, archive_path).await {
            Err(ImportError::Retry(reason)) if attempt < attempts => {
                tracing::warn!(archive = %archive_path.display(), attempt, %reason, "recording import failed; retrying");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
            other => return other,
        }
    }
    unreachable!("the last attempt returns")
}

/// Imports every settled archive in the spool once; returns how many were
/// imported (bad ones are moved to `failed/`).
pub async fn process_spool(service: &RecordingService, spool: &mut Spool) -> usize {
    let ready = match spool.scan(SystemTime::now()) {
        Ok(ready) => ready,
        Err(err) => {
            tracing::warn!(error = %err, "cannot scan the recording spool");
            return 0;
        }
    };
    let mut imported = 0;
    for archive in ready {
        match import_with_retry(service, &archive.path).await {
            Ok(outcome) => {
                imported += 1;
                tracing::debug!(record_id = %outcome.record_id, events = outcome.events.len(), "archive imported");
                if let Err(err) = spool.done(&archive.path) {
                    tracing::warn!(error = %err, "cannot move an imported archive out of the spool");
                }
            }
            Err(ImportError::BadArchive(reason)) => match spool.fail(&archive.path, &reason) {
                Ok(moved) => tracing::warn!(
                    archive = %archive.name,
                    moved_to = %moved.display(),
                    %reason,
                    "recording archive refused"
                ),
                Err(err) => {
                    tracing::error!(archive = %archive.name, %reason, error = %err, "recording archive refused and could not be moved aside")
                }
            },
            Err(ImportError::Retry(reason)) => {
                tracing::warn!(archive = %archive.name, %reason, "recording import failed; the archive stays for the next scan");
            }
        }
    }
    imported
}

/// Imports one archive of the spool, named by its file name (never a
/// path): the archive goes to `done/` (imported), to `failed/` with its
/// reason (bad: never retried), or stays in the spool for a retry
/// ([`RetryLater`]). A name that is no spool archive, or an archive already
/// handled, changes nothing.
pub async fn import_spooled(service: &RecordingService, name: &str) -> Result<(), RetryLater> {
    if name.contains(['/', '\\']) || !spool::is_archive_name(name) {
        tracing::warn!(name = %name, "import job names no spool archive; dropped");
        return Ok(());
    }
    let path = service.spool_dir.join(name);
    if !path.is_file() {
        tracing::debug!(name = %name, "archive already handled");
        return Ok(());
    }
    let spool = service.spool();
    match import_archive(service, &path).await {
        Ok(outcome) => {
            tracing::debug!(record_id = %outcome.record_id, events = outcome.events.len(), "archive imported");
            if let Err(err) = spool.done(&path) {
                tracing::warn!(error = %err, "cannot move an imported archive out of the spool");
            }
            Ok(())
        }
        Err(ImportError::BadArchive(reason)) => {
            match spool.fail(&path, &reason) {
                Ok(moved) => tracing::warn!(
                    archive = %name,
                    moved_to = %moved.display(),
                    %reason,
                    "recording archive refused"
                ),
                Err(err) => {
                    tracing::error!(archive = %name, %reason, error = %err, "recording archive refused and could not be moved aside")
                }
            }
            Ok(())
        }
        Err(ImportError::Retry(reason)) => {
            tracing::warn!(archive = %name, %reason, "recording import failed; retrying");
            Err(RetryLater(reason))
        }
    }
}

/// Removes what the spool and the tree kept aside past the retention
/// settings (`done/`, `failed/`, interrupted uploads and staging); returns
/// how many entries went.
pub fn prune_spool(service: &RecordingService) -> usize {
    let mut stagings = vec![service.files().staging_dir()];
    // An object store (the deployment's or a tenant's) stages under the
    // local directory.
    let local = service.settings.dir.join(".staging");
    if !stagings.contains(&local) && local.is_dir() {
        stagings.push(local);
    }
    let removed: usize = stagings
        .iter()
        .map(|staging| {
            service
                .spool()
                .prune(staging, service.settings.retention, SystemTime::now())
        })
        .sum();
    if removed > 0 {
        tracing::info!(removed, "pruned the spool's kept archives and leftovers");
    }
    removed
}

/// Moves every recording's files to the tree its recorded state says
/// (published or unpublished), after a move that failed or a crash between
/// a recorded publish and its move. Files of recordings the log does not
/// hold (or deleted ones) are left alone. Returns how many were moved.
pub async fn reconcile_tree(service: &RecordingService) -> usize {
    let mut moved = 0;
    for store in service.stores.all(service.store.as_ref()).await {
        for visibility in [Visibility::Published, Visibility::Unpublished] {
            let Ok(ids) = store.record_ids(visibility).await else {
                continue;
            };
            for id in ids {
                let Ok(Some(recording)) = service.store.recording(id.as_str()).await else {
                    continue;
                };
                if recording.state == "deleted"
                    || recording.published == (visibility == Visibility::Published)
                {
                    continue;
                }
                let target = Visibility::from_published(recording.published);
                match store.set_visibility(&id, target).await {
                    Ok(_) => moved += 1,
                    Err(err) => {
                        tracing::warn!(record_id = %recording.record_id, store = %store.describe(), error = %err, "cannot reconcile a recording's files")
                    }
                }
            }
        }
    }
    if moved > 0 {
        tracing::info!(moved, "moved recordings to the tree their state says");
    }
    moved
}

/// Whether the spool holds archive files (settled or not).
pub fn has_archives(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().any(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(spool::is_archive_name)
            })
        })
        .unwrap_or(false)
}

/// What [`import_tree`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeImport {
    /// Recordings recorded now (new, or with new formats).
    pub imported: usize,
    /// Recordings already known as they are.
    pub unchanged: usize,
    /// Directories skipped, with the reason.
    pub problems: Vec<(std::path::PathBuf, String)>,
}

/// Imports an existing published tree (`<path>/<format>/<recordID>/`, a BBB
/// server's `/var/bigbluebutton/published` or a Scalelite published
/// directory): each format is copied into the recording tree (through
/// staging, so a half copy is never served) and recorded. Safe to run again.
pub async fn import_tree(
    service: &RecordingService,
    path: &Path,
) -> Result<TreeImport, TreeImportError> {
    let source = path.to_path_buf();
    let scan =
        tokio::task::spawn_blocking(move || switchboard_recordings::layout::import_dir(&source))
            .await??;
    let mut report = TreeImport {
        problems: scan
            .problems
            .into_iter()
            .map(|p| (p.path, p.reason))
            .collect(),
        ..TreeImport::default()
    };
    for found in scan.recordings {
        let Some(first) = found.formats.first() else {
            continue;
        };
        let owner = match owner(service, found.record_id.as_str(), &first.metadata).await {
            Ok(owner) => owner,
            Err(err) => {
                report.problems.push((first.dir.clone(), err.to_string()));
                continue;
            }
        };
        let store = match service
            .stores
            .for_tenant(service.store.as_ref(), &owner.1)
            .await
        {
            Ok(store) => store,
            Err(err) => {
                report.problems.push((first.dir.clone(), err.to_string()));
                continue;
            }
        };
        // Copied, never moved: the source tree stays as it is (the tree on
        // disk copies through its staging, so a half copy is never served).
        let mut installed = Vec::new();
        for format in &found.formats {
            installed.push(
                store
                    .install(
                        format,
                        Visibility::from_published(format.metadata.published),
                    )
                    .await
                    .map_err(|err| err.to_string()),
            );
        }
        let mut formats = Vec::new();
        let mut published = true;
        for (format, result) in found.formats.iter().zip(installed) {
            match result {
                Ok(done) => {
                    published = done.visibility == Visibility::Published;
                    formats.push(format_of(format));
                }
                Err(reason) => report.problems.push((format.dir.clone(), reason)),
            }
        }
        if formats.is_empty() {
            continue;
        }
        match record_import(
            service,
            found.record_id.as_str(),
            first,
            formats,
            published,
            owner,
            "cli:import-dir",
        )
        .await
        {
            Ok(outcome) if outcome.events.is_empty() => report.unchanged += 1,
            Ok(_) => report.imported += 1,
            Err(err) => report.problems.push((first.dir.clone(), err.to_string())),
        }
    }
    Ok(report)
}
