//! `switchboard replay`: every projection rebuilt from the log. The log is
//! read in large pages (one task reads and decodes, another folds) into an
//! in-memory image, which is written in bulk into shadow tables while the
//! live tables keep answering; one short transaction then swaps the shadows
//! in and applies, through the append path, the events appended meanwhile.
//! `--check` does the same in a transaction it rolls back, and reports how
//! the rebuilt tables differ from the live ones.

mod image;
mod postgres;
mod sqlite;
mod tables;

use crate::store::{SqlError, Store, decode};
use image::{ProjectionImage, run_after};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use switchboard_app::records::StoredEvent;
use switchboard_migrations::entities::{
    archive, event, hook, meeting, meeting_listing, meeting_run, recording, recording_bucket,
    recording_count, recording_meta, run_usage, server, tenant, token, usage_run,
};
use tables::Table;
pub use tables::TableDifference;
pub(crate) use tables::insert_rows;

/// Events read per page.
const PAGE: u64 = 5_000;

/// What a rebuild does with what it built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildMode {
    /// Swap the rebuilt projections in.
    Swap,
    /// Compare them with the live ones and change nothing.
    Check,
}

/// Where a rebuild is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildPhase {
    /// Reading and folding the log: `done` of `total` events.
    Reading,
    /// Writing the shadow tables: `done` of `total` tables.
    Writing,
    /// Swapping them in (or comparing them).
    Swapping,
}

/// A rebuild's progress, for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The phase.
    pub phase: RebuildPhase,
    /// Done so far.
    pub done: u64,
    /// Of this many.
    pub total: u64,
}

/// What a rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Events read from the log and folded in memory (after the newest
    /// archive's projections, if events were archived).
    pub applied: u64,
    /// Events appended while it read, applied in the swap.
    pub caught_up: u64,
    /// Rows written to the shadow tables.
    pub rows: u64,
    /// With [`RebuildMode::Check`]: how the rebuilt tables differ from the
    /// live ones (empty: they agree).
    pub differences: Vec<TableDifference>,
    /// Time spent reading and folding the log.
    pub reading: std::time::Duration,
    /// Time spent writing the shadow tables.
    pub writing: std::time::Duration,
    /// Time spent in the swap (or comparison) transaction: appends wait
    /// this long.
    pub swapping: std::time::Duration,
}

/// The projection tables a rebuild replaces.
fn rebuilt_tables() -> Vec<Table> {
    vec![
        Table::of::<server::Entity>(),
        Table::of::<token::Entity>(),
        Table::of::<tenant::Entity>(),
        Table::of::<meeting::Entity>(),
        Table::of::<meeting_run::Entity>(),
        Table::of::<recording::Entity>(),
        Table::of::<recording_meta::Entity>(),
        Table::of::<recording_count::Entity>(),
        Table::of::<hook::Entity>(),
        Table::of::<usage_run::Entity>(),
    ]
}

/// Tables a rebuild changes in place (and `--check` compares too).
fn amended_tables() -> Vec<Table> {
    vec![
        Table::of::<run_usage::Entity>(),
        Table::of::<meeting_listing::Entity>(),
        Table::of::<recording_bucket::Entity>(),
    ]
}

fn fold_error(position: i64) -> impl Fn(image::FoldError) -> SqlError {
    move |err| SqlError::Corrupt {
        position,
        reason: err.0,
    }
}

impl Store {
    /// Rebuilds every projection from the log and swaps it in. Returns the
    /// number of events applied.
    pub async fn replay(&self) -> Result<u64, SqlError> {
        let report = self.rebuild(RebuildMode::Swap, &mut |_| {}).await?;
        Ok(report.applied + report.caught_up)
    }

    /// Rebuilds every projection from the log; `mode` says whether it is
    /// swapped in or only compared with the live projections. `progress`
    /// hears where it is.
    pub async fn rebuild(
        &self,
        mode: RebuildMode,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<RebuildReport, SqlError> {
        let lock = self.maintenance_lock().await?;
        let outcome = self.rebuild_locked(mode, progress).await;
        lock.release().await;
        outcome
    }

    /// [`rebuild`](Self::rebuild), with the maintenance lock held.
    async fn rebuild_locked(
        &self,
        mode: RebuildMode,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<RebuildReport, SqlError> {
        let started = std::time::Instant::now();
        let watermark = self.settled_position().await?;
        let (image, read) = self.fold_log(watermark, progress, &mut |_| Ok(())).await?;
        let reading = started.elapsed();
        let tables = rebuilt_tables();
        let rows = self.write_shadows(&image, &tables, progress).await;
        let writing = started.elapsed() - reading;
        let outcome = match rows {
            Ok(rows) => {
                progress(RebuildProgress {
                    phase: RebuildPhase::Swapping,
                    done: 0,
                    total: 1,
                });
                self.swap(&image, &tables, watermark, mode)
                    .await
                    .map(|(caught_up, differences)| RebuildReport {
                        applied: read,
                        caught_up,
                        rows,
                        differences,
                        reading,
                        writing,
                        swapping: started.elapsed() - reading - writing,
                    })
            }
            Err(err) => Err(err),
        };
        for table in &tables {
            tables::drop_shadow(&self.db, table).await?;
        }
        outcome
    }

    /// The last position below which every append has committed: on
    /// PostgreSQL, taken while appends are held (positions are handed out
    /// before commit); SQLite has one writer at a time.
    pub(crate) async fn settled_position(&self) -> Result<i64, SqlError> {
        if !self.is_postgres() {
            return crate::store::last_position_on(&self.db).await;
        }
        let txn = self.db.begin().await?;
        txn.execute_unprepared("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        let last = crate::store::last_position_on(&txn).await?;
        txn.commit().await?;
        Ok(last)
    }

    /// Reads the log up to `watermark` and folds it, from the projections
    /// kept by the newest archive if events were archived; one task reads
    /// and decodes the pages while this one folds them and shows each event
    /// to `observe`. Returns the image and how many events were read.
    pub(crate) async fn fold_log(
        &self,
        watermark: i64,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
        observe: &mut (dyn FnMut(&StoredEvent) -> Result<(), SqlError> + Send),
    ) -> Result<(ProjectionImage, u64), SqlError> {
        let mut image = self.archived_projections().await?.unwrap_or_default();
        let start = image.position;
        let total = event::Entity::find()
            .filter(event::Column::Position.gt(start))
            .filter(event::Column::Position.lte(watermark))
            .count(&self.db)
            .await?;
        let (pages, mut received) = tokio::sync::mpsc::channel(2);
        let reader = tokio::spawn(read_pages(self.db.clone(), start, watermark, pages));
        let mut read = 0;
        while let Some(page) = received.recv().await {
            for stored in page? {
                image.apply(&stored).map_err(fold_error(stored.position))?;
                observe(&stored)?;
                read += 1;
            }
            progress(RebuildProgress {
                phase: RebuildPhase::Reading,
                done: read,
                total,
            });
        }
        reader
            .await
            .map_err(|err| SqlError::Database(DbErr::Custom(err.to_string())))?;
        Ok((image, read))
    }

    /// The projections kept by the newest archive (`None`: nothing was
    /// archived; the log starts at its start).
    async fn archived_projections(&self) -> Result<Option<ProjectionImage>, SqlError> {
        let newest = archive::Entity::find()
            .order_by_desc(archive::Column::LastPosition)
            .one(&self.db)
            .await?;
        let Some(newest) = newest else {
            return Ok(None);
        };
        ProjectionImage::from_bytes(&newest.projections)
            .map(Some)
            .map_err(fold_error(newest.last_position))
    }

    /// Writes the image into fresh shadow tables; returns the rows written.
    async fn write_shadows(
        &self,
        image: &ProjectionImage,
        tables: &[Table],
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<u64, SqlError> {
        for table in tables {
            if self.is_postgres() {
                postgres::create_shadow(&self.db, table).await?;
            } else {
                sqlite::create_shadow(&self.db, table).await?;
            }
        }
        let corrupt = |err: image::FoldError| SqlError::Corrupt {
            position: image.position,
            reason: err.0,
        };
        let (recordings, metadata, counts) = image.recording_rows().map_err(corrupt)?;
        let tenants = image.tenant_rows().map_err(corrupt)?;
        let total = tables.len() as u64;
        let mut done = 0;
        let mut written = |rows: u64| {
            done += 1;
            progress(RebuildProgress {
                phase: RebuildPhase::Writing,
                done,
                total,
            });
            rows
        };
        let mut rows = written(
            self.load::<server::Entity>(&tables[0], image.servers.values().cloned())
                .await?,
        );
        rows += written(
            self.load::<token::Entity>(&tables[1], image.tokens.values().cloned())
                .await?,
        );
        rows += written(self.load::<tenant::Entity>(&tables[2], tenants).await?);
        rows += written(
            self.load::<meeting::Entity>(&tables[3], image.meetings.values().cloned())
                .await?,
        );
        rows += written(
            self.load::<meeting_run::Entity>(&tables[4], image.meeting_runs.values().cloned())
                .await?,
        );
        rows += written(
            self.load::<recording::Entity>(&tables[5], recordings)
                .await?,
        );
        rows += written(
            self.load::<recording_meta::Entity>(&tables[6], metadata)
                .await?,
        );
        rows += written(
            self.load::<recording_count::Entity>(&tables[7], counts)
                .await?,
        );
        rows += written(
            self.load::<hook::Entity>(&tables[8], image.hooks.values().cloned())
                .await?,
        );
        rows += written(
            self.load::<usage_run::Entity>(&tables[9], image.usage_runs.values().cloned())
                .await?,
        );
        Ok(rows)
    }

    /// Writes rows of entity `E` into the shadow of `table` (on PostgreSQL
    /// with `COPY`, then its indexes); returns how many.
    async fn load<E>(
        &self,
        table: &Table,
        rows: impl IntoIterator<Item = E::Model>,
    ) -> Result<u64, SqlError>
    where
        E: EntityTrait,
        E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E>,
    {
        debug_assert_eq!(table.name, E::default().table_name());
        if !self.is_postgres() {
            return Ok(tables::insert_rows::<E, _>(&self.db, &table.shadow(), rows).await?);
        }
        let written = postgres::copy_rows::<E>(&self.db, &table.shadow(), rows).await?;
        postgres::index_shadow(&self.db, table).await?;
        Ok(written)
    }

    /// In one transaction that holds appends: the shadows swapped in, the
    /// runs' usage rows and listings amended, and the events appended
    /// after `watermark` applied the way an append applies them. `Check`
    /// compares the outcome with the tables as they were and rolls back.
    async fn swap(
        &self,
        image: &ProjectionImage,
        tables: &[Table],
        watermark: i64,
        mode: RebuildMode,
    ) -> Result<(u64, Vec<TableDifference>), SqlError> {
        let txn = self.db.begin().await?;
        // Appends wait until this commits; readers of a swapped table wait
        // from its rename on. A lock held by a long reader ends the swap
        // rather than queueing everyone behind it.
        match txn.get_database_backend() {
            DbBackend::Postgres => {
                txn.execute_unprepared("SET LOCAL lock_timeout = '10s'")
                    .await?;
                txn.execute_unprepared("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
                    .await?;
            }
            // SQLite's first write takes the one write lock.
            _ => {
                txn.execute_unprepared(&format!(
                    "DELETE FROM \"{}\" WHERE 1 = 0",
                    tables[0].shadow()
                ))
                .await?;
            }
        }
        let postgres = txn.get_database_backend() == DbBackend::Postgres;
        let check = mode == RebuildMode::Check;
        let compared: Vec<Table> = tables.iter().cloned().chain(amended_tables()).collect();
        if check {
            // The replaced tables are kept themselves (renamed); the
            // amended ones are copied.
            for table in &compared[tables.len()..] {
                tables::keep_before(&txn, table).await?;
            }
        }
        for table in tables {
            if postgres {
                postgres::rename_in(&txn, table, check).await?;
            } else {
                sqlite::rename_in(&txn, table, check).await?;
            }
        }
        amend_run_usage(&txn, image).await?;
        drop_ended_listings(&txn, image).await?;
        crate::buckets::recount(&txn).await?;
        let caught_up = catch_up(&txn, watermark).await?;
        if mode == RebuildMode::Swap {
            txn.commit().await?;
            return Ok((caught_up, Vec::new()));
        }
        let mut differences = Vec::new();
        for table in &compared {
            let ignored = matches!(
                table.name.as_str(),
                "recording_counts" | "recording_buckets"
            )
            .then_some("count = 0");
            if let Some(difference) = tables::differences(&txn, table, ignored).await? {
                differences.push(difference);
            }
        }
        txn.rollback().await?;
        Ok((caught_up, differences))
    }
}

/// Reads the events after `start` up to `watermark` in pages, decoded,
/// into `pages`.
async fn read_pages(
    db: DatabaseConnection,
    start: i64,
    watermark: i64,
    pages: tokio::sync::mpsc::Sender<Result<Vec<StoredEvent>, SqlError>>,
) {
    let mut after = start;
    loop {
        let rows = event::Entity::find()
            .filter(event::Column::Position.gt(after))
            .filter(event::Column::Position.lte(watermark))
            .order_by_asc(event::Column::Position)
            .limit(PAGE)
            .all(&db)
            .await;
        let page = match rows {
            Ok(rows) => rows,
            Err(err) => {
                let _ = pages.send(Err(err.into())).await;
                return;
            }
        };
        let Some(last) = page.last() else { return };
        after = last.position;
        let decoded: Result<Vec<_>, SqlError> = page.into_iter().map(decode).collect();
        let failed = decoded.is_err();
        if pages.send(decoded).await.is_err() || failed {
            return;
        }
    }
}

/// The runs' `run_usage` rows after the log's steps: running runs without
/// a row get one (closed: nothing was sampled), rows it changes are
/// updated, the sampled figures of existing rows are never touched.
async fn amend_run_usage<C: ConnectionTrait>(
    db: &C,
    image: &ProjectionImage,
) -> Result<(), SqlError> {
    let existing: std::collections::HashMap<String, (Option<i64>, bool)> =
        run_usage::Entity::find()
            .select_only()
            .column(run_usage::Column::InternalId)
            .column(run_usage::Column::EndedMs)
            .column(run_usage::Column::Summarized)
            .into_tuple::<(String, Option<i64>, bool)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(id, ended, summarized)| (id, (ended, summarized)))
            .collect();
    let mut opened = Vec::new();
    for (internal_id, run) in &image.runs {
        let before = existing.get(internal_id).copied();
        let (ended, summarized) = run_after(before, &run.steps);
        match before {
            // A row made for an ended run would be closed and then pruned
            // unread: only runs still running get one (it keeps their
            // unsampled start from ever being billed).
            None if ended.is_some() => {}
            None => {
                let mut state = run.opened.clone();
                state.ended_ms = ended;
                state.summarized = summarized;
                opened.push(crate::usage_rows::model_of(&state));
            }
            Some(before) if before != (ended, summarized) => {
                run_usage::Entity::update_many()
                    .col_expr(run_usage::Column::EndedMs, Expr::value(ended))
                    .col_expr(run_usage::Column::Summarized, Expr::value(summarized))
                    .filter(run_usage::Column::InternalId.eq(internal_id.as_str()))
                    .exec(db)
                    .await?;
            }
            Some(_) => {}
        }
    }
    tables::insert_rows::<run_usage::Entity, _>(db, "run_usage", opened).await?;
    Ok(())
}

/// Drops the listings of runs that ended (as each `MeetingEnded` does);
/// listings are few (running meetings), ended runs many: the listings are
/// read and matched here.
async fn drop_ended_listings<C: ConnectionTrait>(
    db: &C,
    image: &ProjectionImage,
) -> Result<(), SqlError> {
    let listed: Vec<String> = meeting_listing::Entity::find()
        .select_only()
        .column(meeting_listing::Column::InternalId)
        .into_tuple::<String>()
        .all(db)
        .await?;
    let ended: Vec<String> = listed
        .into_iter()
        .filter(|id| image.ended_runs.contains(id))
        .collect();
    for chunk in ended.chunks(500) {
        meeting_listing::Entity::delete_many()
            .filter(meeting_listing::Column::InternalId.is_in(chunk.iter().map(String::as_str)))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Applies the events after `watermark` (appended while the log was read)
/// the way an append does; returns how many.
async fn catch_up<C: ConnectionTrait>(db: &C, watermark: i64) -> Result<u64, SqlError> {
    let mut counts = crate::projection::CountChanges::default();
    let mut after = watermark;
    let mut applied = 0;
    loop {
        let rows = event::Entity::find()
            .filter(event::Column::Position.gt(after))
            .order_by_asc(event::Column::Position)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        for row in rows {
            let stored = decode(row)?;
            crate::projection::apply(
                db,
                &stored.stream,
                &stored.event,
                stored.version,
                stored.position,
                stored.recorded_at,
                &mut counts,
            )
            .await?;
            applied += 1;
        }
    }
    counts.write(db).await?;
    Ok(applied)
}

impl Store {
    /// For the benchmark only (`replay --bench`, on a scratch database):
    /// empties the projections and applies the first `events` events one
    /// by one through the append path (the way replay used to work), in one
    /// transaction (`one_transaction`) or committing every `chunk` events;
    /// returns the time of each chunk. The projections are left as those
    /// events made them: run a replay after.
    pub async fn bench_apply_one_by_one(
        &self,
        events: i64,
        chunk: i64,
        one_transaction: bool,
    ) -> Result<Vec<std::time::Duration>, SqlError> {
        for table in rebuilt_tables() {
            self.db
                .execute_unprepared(&format!("DELETE FROM \"{}\"", table.name))
                .await?;
        }
        self.db
            .execute_unprepared("DELETE FROM recording_buckets")
            .await?;
        let mut times = Vec::new();
        let mut txn = self.db.begin().await?;
        let mut after = 0;
        while after < events {
            let started = std::time::Instant::now();
            let mut counts = crate::projection::CountChanges::default();
            let rows = event::Entity::find()
                .filter(event::Column::Position.gt(after))
                .filter(event::Column::Position.lte((after + chunk).min(events)))
                .order_by_asc(event::Column::Position)
                .all(&txn)
                .await?;
            for row in rows {
                let stored = decode(row)?;
                crate::projection::apply(
                    &txn,
                    &stored.stream,
                    &stored.event,
                    stored.version,
                    stored.position,
                    stored.recorded_at,
                    &mut counts,
                )
                .await?;
            }
            counts.write(&txn).await?;
            if !one_transaction {
                txn.commit().await?;
                txn = self.db.begin().await?;
            }
            after += chunk;
            times.push(started.elapsed());
        }
        txn.commit().await?;
        Ok(times)
    }
}
