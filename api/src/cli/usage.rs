//! `switchboard usage`: usage per tenant and period, for billing, as a
//! table, JSON or CSV.

use super::table::{Table, print_json};
use super::target::Target;
use crate::admin::usage::{UsagePeriod, UsageReport, UsageRowView, period, usage_filter};
use clap::ValueEnum;

/// How rows are grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// One row per UTC day.
    Day,
    /// One row per UTC month.
    Month,
}

/// What `usage` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageArgs {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// First day (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Last day (`YYYY-MM-DD`).
    pub to: Option<String>,
    /// Grouping.
    pub by: By,
    /// JSON out.
    pub json: bool,
    /// CSV out.
    pub csv: bool,
}

impl Target {
    /// The usage report.
    pub async fn usage(&self, args: &UsageArgs) -> anyhow::Result<UsageReport> {
        let by = match args.by {
            By::Day => UsagePeriod::Day,
            By::Month => UsagePeriod::Month,
        };
        match self {
            Target::Local(local) => {
                let filter = usage_filter(
                    args.tenant.clone(),
                    args.from.as_deref(),
                    args.to.as_deref(),
                )?;
                let rows = local.admin.usage(&filter, period(Some(by))).await?;
                Ok(UsageReport {
                    rows: rows.iter().map(UsageRowView::from).collect(),
                })
            }
            Target::Remote(remote) => {
                let mut query = vec![(
                    "by",
                    match by {
                        UsagePeriod::Day => "day".to_owned(),
                        UsagePeriod::Month => "month".to_owned(),
                    },
                )];
                for (key, value) in [
                    ("tenant", &args.tenant),
                    ("from", &args.from),
                    ("to", &args.to),
                ] {
                    if let Some(value) = value {
                        query.push((key, value.clone()));
                    }
                }
                remote.get(&["usage"], &query).await
            }
        }
    }
}

/// Minutes with two decimals.
fn minutes(value: f64) -> String {
    format!("{value:.2}")
}

/// The report as CSV (a header, then one line per row).
pub fn csv(report: &UsageReport) -> String {
    let mut out = String::from(
        "tenant,period,meetings,meeting_minutes,attendee_minutes,peak_concurrent_attendees,peak_meeting_attendees,recordable_meetings,recordings,recording_bytes\n",
    );
    for row in &report.rows {
        // Tenant names are DNS labels and periods dates: nothing to quote.
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            row.tenant,
            row.period,
            row.meetings,
            minutes(row.meeting_minutes),
            minutes(row.attendee_minutes),
            row.peak_concurrent_attendees,
            row.peak_meeting_attendees,
            row.recordable_meetings,
            row.recordings,
            row.recording_bytes
        ));
    }
    out
}

/// Runs `usage`.
pub async fn run(target: &Target, args: UsageArgs) -> anyhow::Result<()> {
    let report = target.usage(&args).await?;
    if args.json {
        return print_json(&report);
    }
    if args.csv {
        print!("{}", csv(&report));
        return Ok(());
    }
    let mut table = Table::new(&[
        "TENANT",
        "PERIOD",
        "MEETINGS",
        "MEETING MIN",
        "ATTENDEE MIN",
        "PEAK CONCURRENT",
        "PEAK MEETING",
        "RECORDED",
        "RECORDINGS",
        "RECORDING BYTES",
    ])
    .right(&[2, 3, 4, 5, 6, 7, 8, 9]);
    for row in &report.rows {
        table.row(vec![
            row.tenant.clone(),
            row.period.clone(),
            row.meetings.to_string(),
            minutes(row.meeting_minutes),
            minutes(row.attendee_minutes),
            row.peak_concurrent_attendees.to_string(),
            row.peak_meeting_attendees.to_string(),
            row.recordable_meetings.to_string(),
            row.recordings.to_string(),
            row.recording_bytes.to_string(),
        ]);
    }
    table.print_or("no usage in this period (runs count once they ended and were summarized)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_header_and_minutes_with_two_decimals() {
        let report = UsageReport {
            rows: vec![UsageRowView {
                tenant: "school".into(),
                period: "2026-12".into(),
                meetings: 2,
                meeting_minutes: 70.0,
                attendee_minutes: 539.5,
                peak_concurrent_attendees: 20,
                peak_meeting_attendees: 20,
                recordable_meetings: 1,
                recordings: 2,
                recording_bytes: 1_500_000,
            }],
        };
        assert_eq!(
            csv(&report),
            "tenant,period,meetings,meeting_minutes,attendee_minutes,peak_concurrent_attendees,\
             peak_meeting_attendees,recordable_meetings,recordings,recording_bytes\n\
             school,2026-12,2,70.00,539.50,20,20,1,2,1500000\n"
        );
    }
}
