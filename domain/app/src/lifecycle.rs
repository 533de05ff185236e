//! Commands several use cases share: ending a meeting's run, and disabling
//! a cordoned server once it is drained.

use crate::error::StoreError;
use crate::executor::{CommandError, CommandExecutor, Executed};
use crate::ports::{MeetingReads, ServerReads};
use crate::records::{MeetingRecord, NewCallback};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::{ServerId, meeting_stream};
use switchboard_domain::meeting::{EndReason, MeetingCommand, MeetingError, MeetingEvent};
use switchboard_domain::server::{Server, ServerCommand, ServerState};

/// Records the end of the run a record names (a newer run of the same
/// meetingID is left alone) at `at_ms`.
pub async fn end_run(
    executor: &CommandExecutor,
    record: &MeetingRecord,
    reason: EndReason,
    at_ms: i64,
    metadata: &EventMetadata,
) -> Result<Executed<MeetingEvent>, CommandError<MeetingError>> {
    end_run_with_callbacks(executor, record, reason, at_ms, metadata, Vec::new()).await
}

/// As [`end_run`], writing `callbacks` in the same transaction when (and
/// only when) this records the end.
pub async fn end_run_with_callbacks(
    executor: &CommandExecutor,
    record: &MeetingRecord,
    reason: EndReason,
    at_ms: i64,
    metadata: &EventMetadata,
    callbacks: Vec<NewCallback>,
) -> Result<Executed<MeetingEvent>, CommandError<MeetingError>> {
    let command = MeetingCommand::RecordEnded {
        reason,
        at_ms,
        only_run: Some(record.run.internal_id.clone()),
    };
    executor
        .execute_from_with(
            &meeting_stream(&record.tenant, &record.meeting_id),
            record.aggregate(),
            record.version,
            &command,
            metadata,
            &|events: &[MeetingEvent]| {
                if events.is_empty() {
                    Vec::new()
                } else {
                    callbacks.clone()
                }
            },
        )
        .await
}

/// Disables a cordoned server once no meeting runs on it (drained); true
/// when it did.
pub async fn disable_if_drained<R>(
    reads: &R,
    executor: &CommandExecutor,
    server_id: ServerId,
    metadata: &EventMetadata,
) -> Result<bool, StoreError>
where
    R: MeetingReads + ServerReads + ?Sized,
{
    let Some(server) = reads.server(server_id).await? else {
        return Ok(false);
    };
    if server.state != ServerState::Cordoned {
        return Ok(false);
    }
    let running = reads.running_meetings_per_server().await?;
    if running.get(&server_id).copied().unwrap_or(0) > 0 {
        return Ok(false);
    }
    match executor
        .execute_from::<Server>(
            &server_id.stream(),
            server.aggregate(),
            server.version,
            &ServerCommand::Disable,
            metadata,
        )
        .await
    {
        Ok(executed) => Ok(!executed.events.is_empty()),
        Err(CommandError::Store(err)) => Err(err),
        Err(CommandError::Rejected(_)) => Ok(false),
    }
}
