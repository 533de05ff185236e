//! `switchboard callbacks`: the deliveries owed to front-ends (see
//! docs/callbacks.md), listed, retried and dropped, locally or through a
//! remote instance's admin API.

use super::table::{Table, print_json, time_ms};
use super::target::Target;
use clap::Subcommand;

/// `callbacks` subcommands.
#[derive(Debug, Subcommand)]
pub enum CallbacksCommand {
    /// List deliveries, newest first.
    List {
        /// Only in this state: pending, delivered, failed or dropped.
        #[arg(long)]
        state: Option<String>,
        /// Only this tenant's (`default` for the default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Only this kind: end-callback, meeting-ended, analytics, recording-ready or webhook.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many (default 100).
        #[arg(long)]
        limit: Option<u64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Attempt a failed or pending delivery now, with a fresh time window.
    Retry {
        /// The delivery's id (from `callbacks list`).
        id: String,
    },
    /// Drop a pending or failed delivery: it is never attempted again.
    Drop {
        /// The delivery's id (from `callbacks list`).
        id: String,
    },
}

/// Runs a `callbacks` subcommand.
pub async fn run(target: &Target, command: CallbacksCommand) -> anyhow::Result<()> {
    match command {
        CallbacksCommand::List {
            state,
            tenant,
            kind,
            limit,
            json,
        } => {
            let found = target
                .callbacks(state.as_deref(), tenant.as_deref(), kind.as_deref(), limit)
                .await?;
            if json {
                return print_json(&found);
            }
            let mut table = Table::new(&[
                "ID", "KIND", "TENANT", "MEETING", "STATE", "ATTEMPTS", "CREATED", "LAST",
            ]);
            for callback in &found {
                let last = match (&callback.last_status, &callback.last_error) {
                    (_, Some(error)) => error.clone(),
                    (Some(status), None) => format!("HTTP {status}"),
                    (None, None) => String::new(),
                };
                table.row(vec![
                    callback.id.clone(),
                    callback.kind.clone(),
                    callback.tenant.clone(),
                    callback.meeting_id.clone(),
                    callback.state.clone(),
                    callback.attempts.to_string(),
                    time_ms(callback.created_at_ms),
                    last,
                ]);
            }
            table.print_or("No callback deliveries.");
            Ok(())
        }
        CallbacksCommand::Retry { id } => {
            target.retry_callback(&id).await?;
            out!("callback delivery `{id}` is due now");
            Ok(())
        }
        CallbacksCommand::Drop { id } => {
            target.drop_callback(&id).await?;
            out!("callback delivery `{id}` dropped");
            Ok(())
        }
    }
}
