//! Conversions from table rows to domain values that more than one module needs.

use switchboard_migrations::entities::server;

/// The operator's settings a server row holds.
pub(crate) fn settings_of(row: &server::Model) -> switchboard_domain::server::ServerSettings {
    switchboard_domain::server::ServerSettings {
        url: row.url.clone(),
        secret: row.secret.clone(),
        tag: row.tag.clone(),
        load_multiplier: row.load_multiplier,
        checksum: row
            .checksum_algorithm
            .as_deref()
            .and_then(switchboard_domain::bbb::checksum::ChecksumAlgorithm::parse),
        metrics_url: row.metrics_url.clone(),
    }
}

/// What a server row holds of its node agent (`None`: never reported).
pub(crate) fn agent_of(row: &server::Model) -> Option<switchboard_domain::server::ServerAgent> {
    serde_json::from_str(row.agent.as_deref()?).ok()
}

/// The row `ServerAdded` makes (the append and replay both build it here).
pub(crate) fn added_server(
    id: &switchboard_domain::ids::ServerId,
    settings: &switchboard_domain::server::ServerSettings,
    version: i64,
    position: i64,
) -> server::Model {
    server::Model {
        id: id.to_string(),
        url: settings.url.clone(),
        secret: settings.secret.clone(),
        tag: settings.tag.clone(),
        load_multiplier: settings.load_multiplier,
        checksum_algorithm: settings.checksum.map(|c| c.name().to_owned()),
        metrics_url: settings.metrics_url.clone(),
        state: switchboard_domain::server::ServerState::Disabled
            .as_str()
            .to_owned(),
        online: true,
        agent: None,
        version,
        position,
    }
}

/// The meeting row `MeetingCreated` makes.
pub(crate) fn created_meeting(
    tenant: &switchboard_domain::ids::TenantId,
    meeting_id: &switchboard_domain::ids::MeetingId,
    name: &str,
    run: &switchboard_domain::meeting::MeetingRun,
    version: i64,
    position: i64,
) -> switchboard_migrations::entities::meeting::Model {
    switchboard_migrations::entities::meeting::Model {
        tenant: tenant.0.clone(),
        meeting_id: meeting_id.as_str().to_owned(),
        name: name.to_owned(),
        internal_id: run.internal_id.clone(),
        server_id: run.server_id.to_string(),
        create_time_ms: run.create_time_ms,
        ended_at_ms: None,
        running: true,
        version,
        position,
    }
}

/// The run row `MeetingCreated` makes (kept from the run's first record).
pub(crate) fn created_run(
    tenant: &switchboard_domain::ids::TenantId,
    meeting_id: &switchboard_domain::ids::MeetingId,
    run: &switchboard_domain::meeting::MeetingRun,
) -> switchboard_migrations::entities::meeting_run::Model {
    switchboard_migrations::entities::meeting_run::Model {
        internal_id: run.internal_id.clone(),
        tenant: tenant.0.clone(),
        meeting_id: meeting_id.as_str().to_owned(),
        server_id: run.server_id.to_string(),
        create_time_ms: run.create_time_ms,
        recording_ready_url: run.recording_ready_url.clone(),
        callback_nonce: run
            .callbacks
            .as_ref()
            .map(|callbacks| callbacks.nonce.clone()),
        callbacks: run
            .callbacks
            .as_ref()
            .and_then(|callbacks| serde_json::to_string(callbacks).ok()),
    }
}

/// The meeting a `meetings` row holds (`None` for a row that cannot be read).
pub(crate) fn meeting_record(
    row: switchboard_migrations::entities::meeting::Model,
) -> Option<switchboard_app::records::MeetingRecord> {
    Some(switchboard_app::records::MeetingRecord {
        tenant: switchboard_domain::ids::TenantId(row.tenant),
        meeting_id: switchboard_domain::ids::MeetingId::parse(&row.meeting_id).ok()?,
        name: row.name,
        run: switchboard_domain::meeting::MeetingRun {
            internal_id: row.internal_id,
            server_id: row.server_id.parse().ok()?,
            create_time_ms: row.create_time_ms,
            recording_ready_url: None,
            callbacks: None,
        },
        running: row.running,
        ended_at_ms: row.ended_at_ms,
        version: row.version,
    })
}

/// Folds a query's rows into `acc` as they arrive, each let go once added:
/// `.all()` holds every row (with SQLite, a copy of each of its values)
/// before the first is converted, which for 10,000 running meetings was
/// several megabytes at each poll.
pub(crate) async fn fold_rows<T, A>(
    rows: impl futures::Stream<Item = Result<T, sea_orm::DbErr>>,
    mut acc: A,
    mut add: impl FnMut(&mut A, T),
) -> Result<A, sea_orm::DbErr> {
    use futures::TryStreamExt as _;
    futures::pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        add(&mut acc, row);
    }
    Ok(acc)
}
