//! Folds events into the projection tables. Called inside the append's
//! transaction and by replay, so the two can never disagree.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect,
};
use std::collections::BTreeMap;
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::events::DomainEvent;
use switchboard_domain::ids::StreamId;
use switchboard_domain::meeting::MeetingEvent;
use switchboard_domain::recording::{RecordingEvent, RecordingFormat};
use switchboard_domain::server::{ServerAgent, ServerEvent, ServerState, apply_changes};
use switchboard_domain::tenant::{Tenant, TenantConfig, TenantEvent};
use switchboard_domain::token::TokenEvent;
use switchboard_migrations::entities::{
    meeting, meeting_run, recording, recording_bucket, recording_count, recording_meta, server,
    tenant, token,
};

/// Changes to `recording_counts` gathered over the events of one append (or
/// a whole replay) and written once at the end, in key order, so concurrent
/// appends lock the shared counter rows in the same order and only briefly.
/// The same goes for the start-time buckets (`recording_buckets`).
#[derive(Debug, Default)]
pub(crate) struct CountChanges {
    counts: BTreeMap<(String, String), i64>,
    buckets: BTreeMap<(String, i16, i64, String), i64>,
}

impl CountChanges {
    fn add(&mut self, tenant: &str, state: &str, start_time_ms: i64, delta: i64) {
        *self
            .counts
            .entry((tenant.to_owned(), state.to_owned()))
            .or_default() += delta;
        for (level, shift) in crate::buckets::LEVELS {
            *self
                .buckets
                .entry((
                    tenant.to_owned(),
                    level,
                    crate::buckets::bucket_of(start_time_ms, shift),
                    state.to_owned(),
                ))
                .or_default() += delta;
        }
    }

    /// Adds the gathered changes to `recording_counts` and
    /// `recording_buckets`.
    pub(crate) async fn write<C: ConnectionTrait>(self, db: &C) -> Result<(), DbErr> {
        for ((tenant, level, bucket, state), delta) in self.buckets {
            if delta == 0 {
                continue;
            }
            let row = recording_bucket::ActiveModel {
                tenant: Set(tenant),
                level: Set(level),
                bucket: Set(bucket),
                state: Set(state),
                count: Set(delta),
            };
            recording_bucket::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([
                        recording_bucket::Column::Tenant,
                        recording_bucket::Column::Level,
                        recording_bucket::Column::Bucket,
                        recording_bucket::Column::State,
                    ])
                    .value(
                        recording_bucket::Column::Count,
                        Expr::cust("recording_buckets.count + excluded.count"),
                    )
                    .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
        }
        for ((tenant, state), delta) in self.counts {
            if delta == 0 {
                continue;
            }
            let row = recording_count::ActiveModel {
                tenant: Set(tenant),
                state: Set(state),
                count: Set(delta),
            };
            recording_count::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([
                        recording_count::Column::Tenant,
                        recording_count::Column::State,
                    ])
                    .value(
                        recording_count::Column::Count,
                        Expr::cust("recording_counts.count + excluded.count"),
                    )
                    .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
        }
        Ok(())
    }
}

/// Applies one event of `stream` at `version`/`position` to the projections;
/// changes to the recording counts go to `counts`, for the caller to write.
pub(crate) async fn apply<C: ConnectionTrait>(
    db: &C,
    stream: &StreamId,
    event: &DomainEvent,
    version: i64,
    position: i64,
    at: chrono::DateTime<chrono::Utc>,
    counts: &mut CountChanges,
) -> Result<(), DbErr> {
    match (stream, event) {
        (StreamId::Server(id), DomainEvent::Server(event)) => {
            apply_server(db, &id.to_string(), event, version, position).await
        }
        (StreamId::Meeting(tenant, meeting_id), DomainEvent::Meeting(event)) => {
            apply_meeting(db, &tenant.0, meeting_id.as_str(), event, version, position).await
        }
        (StreamId::Token(name), DomainEvent::Token(event)) => {
            apply_token(db, name, event, at).await
        }
        (StreamId::Tenant(name), DomainEvent::Tenant(event)) => {
            apply_tenant(db, name, event, version).await
        }
        (StreamId::Recording(id), DomainEvent::Recording(event)) => {
            apply_recording(db, id, event, version, position, counts).await
        }
        (StreamId::Hook(id), DomainEvent::Hook(event)) => apply_hook(db, id, event, position).await,
        _ => Err(DbErr::Custom(format!(
            "event {} in unexpected stream `{stream}`",
            event.type_name()
        ))),
    }
}

/// Webhooks in force: a row while registered.
async fn apply_hook<C: ConnectionTrait>(
    db: &C,
    id: &str,
    event: &switchboard_domain::hook::HookEvent,
    position: i64,
) -> Result<(), DbErr> {
    use switchboard_domain::hook::HookEvent;
    use switchboard_migrations::entities::hook;
    match event {
        HookEvent::HookRegistered { hook: settings } => {
            let row = hook::ActiveModel {
                id: Set(id.to_owned()),
                tenant: Set(settings.tenant.0.clone()),
                settings: Set(serde_json::to_string(settings).map_err(json_err)?),
                position: Set(position),
            };
            hook::Entity::insert(row).exec_without_returning(db).await?;
        }
        HookEvent::HookRemoved => {
            hook::Entity::delete_by_id(id.to_owned()).exec(db).await?;
        }
    }
    Ok(())
}

fn json_err(err: serde_json::Error) -> DbErr {
    DbErr::Custom(err.to_string())
}

/// Replaces the `recording_meta` rows of a recording.
async fn write_meta<C: ConnectionTrait>(
    db: &C,
    record_id: &str,
    metadata: &BTreeMap<String, String>,
) -> Result<(), DbErr> {
    recording_meta::Entity::delete_many()
        .filter(recording_meta::Column::RecordId.eq(record_id))
        .exec(db)
        .await?;
    if metadata.is_empty() {
        return Ok(());
    }
    let rows = metadata
        .iter()
        .map(|(key, value)| recording_meta::ActiveModel {
            record_id: Set(record_id.to_owned()),
            key: Set(key.clone()),
            value: Set(value.clone()),
        });
    recording_meta::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub(crate) fn state_name(published: bool) -> &'static str {
    if published {
        "published"
    } else {
        "unpublished"
    }
}

/// The tenant, state and start time of a recording's row, if it has one.
async fn tenant_state<C: ConnectionTrait>(
    db: &C,
    record_id: &str,
) -> Result<Option<(String, String, i64)>, DbErr> {
    recording::Entity::find_by_id(record_id.to_owned())
        .select_only()
        .column(recording::Column::Tenant)
        .column(recording::Column::State)
        .column(recording::Column::StartTimeMs)
        .into_tuple()
        .one(db)
        .await
}

async fn apply_recording<C: ConnectionTrait>(
    db: &C,
    record_id: &str,
    event: &RecordingEvent,
    version: i64,
    position: i64,
    counts: &mut CountChanges,
) -> Result<(), DbErr> {
    let new_state = match event {
        RecordingEvent::RecordingImported { details, .. } => Some(state_name(details.published)),
        RecordingEvent::RecordingPublished => Some("published"),
        RecordingEvent::RecordingUnpublished => Some("unpublished"),
        RecordingEvent::RecordingDeleted | RecordingEvent::RecordingExpired { .. } => {
            Some("deleted")
        }
        _ => None,
    };
    if let Some(new_state) = new_state {
        let old = tenant_state(db, record_id).await?;
        let tenant = match (event, &old) {
            (RecordingEvent::RecordingImported { details, .. }, _) => {
                Some((details.tenant.0.clone(), details.start_time_ms))
            }
            (_, Some((tenant, _, start))) => Some((tenant.clone(), *start)),
            (_, None) => None,
        };
        if let (Some((old_tenant, old_state, old_start)), Some(_)) = (&old, &tenant) {
            counts.add(old_tenant, old_state, *old_start, -1);
        }
        if let Some((tenant, start)) = tenant {
            counts.add(&tenant, new_state, start, 1);
        }
    }
    if let RecordingEvent::RecordingImported {
        details, formats, ..
    } = event
    {
        let row = recording::ActiveModel {
            record_id: Set(record_id.to_owned()),
            tenant: Set(details.tenant.0.clone()),
            meeting_id: Set(details.meeting_id.clone()),
            internal_meeting_id: Set(details.internal_meeting_id.clone()),
            name: Set(details.name.clone()),
            is_breakout: Set(details.is_breakout),
            breakout: Set(crate::breakout_column::BreakoutColumn::of(details)),
            published: Set(details.published),
            state: Set(state_name(details.published).to_owned()),
            start_time_ms: Set(details.start_time_ms),
            end_time_ms: Set(details.end_time_ms),
            participants: Set(i32::try_from(details.participants).unwrap_or(i32::MAX)),
            protected: Set(false),
            metadata: Set(serde_json::to_string(&details.metadata).map_err(json_err)?),
            formats: Set(serde_json::to_string(formats).map_err(json_err)?),
            version: Set(version),
            position: Set(position),
        };
        recording::Entity::insert(row)
            .on_conflict(
                OnConflict::column(recording::Column::RecordId)
                    .update_columns([
                        recording::Column::Tenant,
                        recording::Column::MeetingId,
                        recording::Column::InternalMeetingId,
                        recording::Column::Name,
                        recording::Column::IsBreakout,
                        recording::Column::Breakout,
                        recording::Column::Published,
                        recording::Column::State,
                        recording::Column::StartTimeMs,
                        recording::Column::EndTimeMs,
                        recording::Column::Participants,
                        recording::Column::Protected,
                        recording::Column::Metadata,
                        recording::Column::Formats,
                        recording::Column::Version,
                        recording::Column::Position,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        return write_meta(db, record_id, &details.metadata).await;
    }
    let update = recording::Entity::update_many()
        .col_expr(recording::Column::Version, Expr::value(version))
        .col_expr(recording::Column::Position, Expr::value(position))
        .filter(recording::Column::RecordId.eq(record_id));
    let update = match event {
        RecordingEvent::RecordingImported { .. } => return Ok(()),
        RecordingEvent::RecordingFormatAdded { format } => {
            let Some(row) = recording::Entity::find_by_id(record_id.to_owned())
                .one(db)
                .await?
            else {
                return Ok(());
            };
            let mut formats: Vec<RecordingFormat> =
                serde_json::from_str(&row.formats).map_err(json_err)?;
            formats.push(format.clone());
            update.col_expr(
                recording::Column::Formats,
                Expr::value(serde_json::to_string(&formats).map_err(json_err)?),
            )
        }
        RecordingEvent::RecordingPublished | RecordingEvent::RecordingUnpublished => {
            let published = matches!(event, RecordingEvent::RecordingPublished);
            update
                .col_expr(recording::Column::Published, Expr::value(published))
                .col_expr(recording::Column::State, Expr::value(state_name(published)))
        }
        RecordingEvent::RecordingMetadataUpdated { set, removed } => {
            let Some(row) = recording::Entity::find_by_id(record_id.to_owned())
                .one(db)
                .await?
            else {
                return Ok(());
            };
            let mut metadata: BTreeMap<String, String> =
                serde_json::from_str(&row.metadata).map_err(json_err)?;
            for key in removed {
                metadata.remove(key);
            }
            for (key, value) in set {
                metadata.insert(key.clone(), value.clone());
            }
            write_meta(db, record_id, &metadata).await?;
            update.col_expr(
                recording::Column::Metadata,
                Expr::value(serde_json::to_string(&metadata).map_err(json_err)?),
            )
        }
        RecordingEvent::RecordingProtected { protected } => {
            update.col_expr(recording::Column::Protected, Expr::value(*protected))
        }
        RecordingEvent::RecordingDeleted | RecordingEvent::RecordingExpired { .. } => update
            .col_expr(recording::Column::Published, Expr::value(false))
            .col_expr(recording::Column::State, Expr::value("deleted")),
    };
    update.exec(db).await?;
    Ok(())
}

async fn apply_tenant<C: ConnectionTrait>(
    db: &C,
    name: &str,
    event: &TenantEvent,
    version: i64,
) -> Result<(), DbErr> {
    let existing = tenant::Entity::find_by_id(name.to_owned()).one(db).await?;
    let mut state = Tenant {
        config: existing
            .as_ref()
            .and_then(|row| serde_json::from_str::<TenantConfig>(&row.config).ok()),
        ..Tenant::default()
    };
    state.evolve(event);
    match state.config {
        Some(config) => {
            let row = tenant::ActiveModel {
                name: Set(name.to_owned()),
                config: Set(
                    serde_json::to_string(&config).map_err(|err| DbErr::Custom(err.to_string()))?
                ),
                version: Set(version),
            };
            tenant::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(tenant::Column::Name)
                        .update_columns([tenant::Column::Config, tenant::Column::Version])
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
        }
        None => {
            tenant::Entity::delete_by_id(name.to_owned())
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

async fn apply_token<C: ConnectionTrait>(
    db: &C,
    name: &str,
    event: &TokenEvent,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    match event {
        TokenEvent::TokenCreated {
            scope,
            hash,
            server,
            ..
        } => {
            let row = token::ActiveModel {
                name: Set(name.to_owned()),
                scope: Set(scope.as_str().to_owned()),
                hash: Set(hash.clone()),
                created_at: Set(at),
                server_id: Set(server.map(|id| id.to_string())),
            };
            token::Entity::insert(row)
                .exec_without_returning(db)
                .await?;
        }
        TokenEvent::TokenBound { server } => {
            token::Entity::update_many()
                .col_expr(token::Column::ServerId, Expr::value(server.to_string()))
                .filter(token::Column::Name.eq(name))
                .exec(db)
                .await?;
        }
        TokenEvent::TokenRevoked => {
            token::Entity::delete_by_id(name.to_owned())
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

async fn apply_server<C: ConnectionTrait>(
    db: &C,
    server_id: &str,
    event: &ServerEvent,
    version: i64,
    position: i64,
) -> Result<(), DbErr> {
    let ServerEvent::ServerAdded { id, settings } = event else {
        return update_server(db, server_id, event, version, position).await;
    };
    let row = crate::rows::added_server(id, settings, version, position).into_active_model();
    server::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// How a server's agent is kept on its row.
pub(crate) fn agent_json(agent: &ServerAgent) -> String {
    serde_json::to_string(agent).unwrap_or_default()
}

/// Applies any server event but `ServerAdded` to the row of `server_id`.
async fn update_server<C: ConnectionTrait>(
    db: &C,
    server_id: &str,
    event: &ServerEvent,
    version: i64,
    position: i64,
) -> Result<(), DbErr> {
    let update = server::Entity::update_many()
        .col_expr(server::Column::Version, Expr::value(version))
        .col_expr(server::Column::Position, Expr::value(position))
        .filter(server::Column::Id.eq(server_id));
    let update = match event {
        ServerEvent::ServerAdded { .. } => return Ok(()),
        ServerEvent::ServerUpdated { changes } => {
            let Some(row) = server::Entity::find_by_id(server_id.to_owned())
                .one(db)
                .await?
            else {
                return Ok(());
            };
            let mut settings = crate::rows::settings_of(&row);
            apply_changes(&mut settings, changes);
            update
                .col_expr(server::Column::Url, Expr::value(settings.url))
                .col_expr(server::Column::Secret, Expr::value(settings.secret))
                .col_expr(server::Column::Tag, Expr::value(settings.tag))
                .col_expr(
                    server::Column::LoadMultiplier,
                    Expr::value(settings.load_multiplier),
                )
                .col_expr(
                    server::Column::ChecksumAlgorithm,
                    Expr::value(settings.checksum.map(|c| c.name().to_owned())),
                )
                .col_expr(
                    server::Column::MetricsUrl,
                    Expr::value(settings.metrics_url),
                )
        }
        ServerEvent::ServerEnabled => update.col_expr(
            server::Column::State,
            Expr::value(ServerState::Enabled.as_str()),
        ),
        ServerEvent::ServerCordoned => update.col_expr(
            server::Column::State,
            Expr::value(ServerState::Cordoned.as_str()),
        ),
        ServerEvent::ServerDisabled => update.col_expr(
            server::Column::State,
            Expr::value(ServerState::Disabled.as_str()),
        ),
        ServerEvent::ServerWentOnline => update.col_expr(server::Column::Online, Expr::value(true)),
        ServerEvent::ServerWentOffline => {
            update.col_expr(server::Column::Online, Expr::value(false))
        }
        ServerEvent::AgentReported {
            version: bbb_version,
            interval_ms,
        } => {
            let agent = ServerAgent {
                version: bbb_version.clone(),
                interval_ms: *interval_ms,
                away: false,
            };
            update.col_expr(server::Column::Agent, Expr::value(agent_json(&agent)))
        }
        ServerEvent::AgentLeft => {
            let Some(row) = server::Entity::find_by_id(server_id.to_owned())
                .one(db)
                .await?
            else {
                return Ok(());
            };
            let Some(mut agent) = crate::rows::agent_of(&row) else {
                return Ok(());
            };
            agent.away = true;
            update.col_expr(server::Column::Agent, Expr::value(agent_json(&agent)))
        }
        ServerEvent::ServerRemoved => {
            server::Entity::delete_by_id(server_id.to_owned())
                .exec(db)
                .await?;
            return Ok(());
        }
    };
    update.exec(db).await?;
    Ok(())
}

async fn apply_meeting<C: ConnectionTrait>(
    db: &C,
    tenant_name: &str,
    meeting_key: &str,
    event: &MeetingEvent,
    version: i64,
    position: i64,
) -> Result<(), DbErr> {
    match event {
        MeetingEvent::MeetingCreated {
            tenant,
            meeting_id,
            name,
            run,
        } => {
            let row =
                crate::rows::created_meeting(tenant, meeting_id, name, run, version, position)
                    .into_active_model();
            meeting::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([meeting::Column::Tenant, meeting::Column::MeetingId])
                        .update_columns([
                            meeting::Column::Name,
                            meeting::Column::InternalId,
                            meeting::Column::ServerId,
                            meeting::Column::CreateTimeMs,
                            meeting::Column::EndedAtMs,
                            meeting::Column::Running,
                            meeting::Column::Version,
                            meeting::Column::Position,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
            let run_row = crate::rows::created_run(tenant, meeting_id, run).into_active_model();
            // A run's owner and callback are those of its first record: a
            // later record of the same run (an adoption) never takes it over
            // nor clears its callback URL (issue 15.A1).
            meeting_run::Entity::insert(run_row)
                .on_conflict(
                    OnConflict::column(meeting_run::Column::InternalId)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
            clear_pending_placement(db, &tenant.0, meeting_id.as_str()).await?;
            crate::usage_rows::start_run(db, tenant, meeting_id, run).await?;
        }
        MeetingEvent::MeetingEnded {
            internal_id, at_ms, ..
        } => {
            // An ended run's listing is no longer shown: dropped with it.
            switchboard_migrations::entities::meeting_listing::Entity::delete_by_id(
                internal_id.clone(),
            )
            .exec(db)
            .await?;
            meeting::Entity::update_many()
                .col_expr(meeting::Column::Running, Expr::value(false))
                .col_expr(meeting::Column::EndedAtMs, Expr::value(*at_ms))
                .col_expr(meeting::Column::Version, Expr::value(version))
                .col_expr(meeting::Column::Position, Expr::value(position))
                .filter(meeting::Column::Tenant.eq(tenant_name))
                .filter(meeting::Column::MeetingId.eq(meeting_key))
                .exec(db)
                .await?;
            crate::usage_rows::end_run(db, internal_id, *at_ms).await?;
        }
        MeetingEvent::MeetingUsageSummarized { usage } => {
            meeting::Entity::update_many()
                .col_expr(meeting::Column::Version, Expr::value(version))
                .col_expr(meeting::Column::Position, Expr::value(position))
                .filter(meeting::Column::Tenant.eq(tenant_name))
                .filter(meeting::Column::MeetingId.eq(meeting_key))
                .exec(db)
                .await?;
            crate::usage_rows::summarized(db, tenant_name, meeting_key, usage).await?;
        }
    }
    Ok(())
}

/// Removes the pending placement of a meeting whose run was recorded (in
/// the append's transaction): the create it noted has been recorded.
async fn clear_pending_placement<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    meeting_id: &str,
) -> Result<(), DbErr> {
    use switchboard_migrations::entities::pending_placement;
    pending_placement::Entity::delete_many()
        .filter(pending_placement::Column::Tenant.eq(tenant))
        .filter(pending_placement::Column::MeetingId.eq(meeting_id))
        .exec(db)
        .await?;
    Ok(())
}
