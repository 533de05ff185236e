//! A meeting's creation appended in one statement on PostgreSQL.
//!
//! The append of an event is a transaction of several statements: BEGIN,
//! the event, each projection row, the listing, COMMIT, each a round trip
//! to the database and each costing it work of its own beyond the row it
//! writes. For the one append on the hot path, a `MeetingCreated`, the same
//! statements are gathered instead of run (the projection code builds them
//! as it always does, against a [`Gathering`] connection) and sent as one
//! statement: a chain of data-modifying `WITH` parts, atomic as any single
//! statement is. Its position is drawn from the log's sequence first, so the
//! projection rows can carry it: two round trips in all.
//!
//! Only single-event appends of `MeetingCreated`: its projection writes rows
//! of different tables and reads nothing. Parts of one statement see one
//! snapshot and cannot see each other's changes, so an append whose rows
//! build on each other (several events of one stream, counters) keeps the
//! transaction.

use crate::store::{SqlError, Store};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, SqlErr, Statement, Value, Values,
};
use std::sync::Mutex;
use switchboard_app::records::{AppendExtras, AppendOutcome};
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::StreamId;
use switchboard_domain::meeting::MeetingEvent;

/// Whether an append can be made in one statement (see the module).
pub(crate) fn eligible(postgres: bool, events: &[DomainEvent]) -> bool {
    postgres
        && matches!(
            events,
            [DomainEvent::Meeting(MeetingEvent::MeetingCreated { .. })]
        )
}

/// A connection that keeps the statements it is given instead of running
/// them. A read cannot be answered: it fails, and nothing was run.
#[derive(Debug)]
pub(crate) struct Gathering {
    backend: DbBackend,
    statements: Mutex<Vec<Statement>>,
}

impl Gathering {
    pub(crate) fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            statements: Mutex::new(Vec::new()),
        }
    }

    /// The statements gathered, in order.
    pub(crate) fn into_statements(self) -> Vec<Statement> {
        self.statements
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn cannot_read() -> DbErr {
        DbErr::Custom("a gathered append cannot read".into())
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Gathering {
    fn get_database_backend(&self) -> DbBackend {
        self.backend
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.statements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stmt);
        Ok(ExecResult::from(
            sea_orm::sqlx::postgres::PgQueryResult::default(),
        ))
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.execute_raw(Statement::from_string(self.backend, sql))
            .await
    }

    async fn query_one_raw(&self, _stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        Err(Self::cannot_read())
    }

    async fn query_all_raw(&self, _stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        Err(Self::cannot_read())
    }
}

/// PostgreSQL statements joined as the parts of one `WITH` statement, their
/// `$n` placeholders renumbered in order. `None` when a statement is not
/// one that can be a part (only INSERT, UPDATE and DELETE can).
pub(crate) fn joined(statements: Vec<Statement>) -> Option<Statement> {
    if statements.is_empty() {
        return None;
    }
    let mut sql = String::from("WITH ");
    let mut values: Vec<Value> = Vec::new();
    for (index, statement) in statements.into_iter().enumerate() {
        let verb = statement
            .sql
            .split_whitespace()
            .next()?
            .to_ascii_uppercase();
        if !matches!(verb.as_str(), "INSERT" | "UPDATE" | "DELETE") {
            return None;
        }
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("w{index} AS ("));
        renumbered(&statement.sql, values.len(), &mut sql)?;
        // The first part is the one the final SELECT reads: it runs before
        // the others (which PostgreSQL runs after the main query), so the
        // event's unique check and row come first, as in the transaction,
        // and concurrent appends take their locks in the same order.
        if index == 0 {
            sql.push_str(" RETURNING 1 AS first");
        }
        sql.push(')');
        values.extend(statement.values.map(|Values(v)| v).unwrap_or_default());
    }
    sql.push_str(" SELECT first FROM w0");
    Some(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
}

/// Copies `sql` to `out` with each `$n` placeholder (outside quoted text
/// and names) moved up by `offset`; `None` on a `$` that is not one.
fn renumbered(sql: &str, offset: usize, out: &mut String) -> Option<()> {
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let number: usize = digits.parse().ok()?;
                out.push_str(&format!("${}", number + offset));
            }
            None => out.push(c),
        }
    }
    Some(())
}

impl Store {
    /// Appends `events` in one statement when they are one `MeetingCreated`
    /// on PostgreSQL (see [`eligible`]): the event at a position drawn
    /// first, its projection rows, and the extras. `None` when they are not,
    /// or cannot be gathered (nothing was written then; the caller appends
    /// in a transaction).
    pub(crate) async fn append_in_one_statement(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata_json: &str,
        metadata: &EventMetadata,
        extras: &AppendExtras<'_>,
    ) -> Result<Option<AppendOutcome>, SqlError> {
        let [event] = events else {
            return Ok(None);
        };
        if !eligible(self.is_postgres(), events) {
            return Ok(None);
        }
        let version = expected + 1;
        let stream_text = stream.to_string();
        let payload = event
            .to_payload()
            .map_err(|err| SqlError::Corrupt {
                position: 0,
                reason: format!("{} cannot be written: {err}", event.type_name()),
            })?
            .to_string();
        let position = self.next_position().await?;
        let now = chrono::Utc::now();
        let gathering = Gathering::new(DbBackend::Postgres);
        let row = switchboard_migrations::entities::event::ActiveModel {
            position: sea_orm::ActiveValue::Set(position),
            stream: sea_orm::ActiveValue::Set(stream_text.clone()),
            version: sea_orm::ActiveValue::Set(version),
            event_type: sea_orm::ActiveValue::Set(event.type_name().to_owned()),
            schema_version: sea_orm::ActiveValue::Set(
                switchboard_domain::events::CURRENT_SCHEMA_VERSION,
            ),
            payload: sea_orm::ActiveValue::Set(payload),
            metadata: sea_orm::ActiveValue::Set(metadata_json.to_owned()),
            recorded_at: sea_orm::ActiveValue::Set(now),
            actor: sea_orm::ActiveValue::Set(Some(metadata.actor.clone())),
        };
        use sea_orm::EntityTrait;
        let gathered = async {
            switchboard_migrations::entities::event::Entity::insert(row)
                .exec_without_returning(&gathering)
                .await?;
            let mut counts = crate::projection::CountChanges::default();
            crate::projection::apply(
                &gathering,
                stream,
                event,
                version,
                position,
                now,
                &mut counts,
            )
            .await?;
            if let Some(listing) = extras.listing {
                crate::listing_rows::put_meeting_listing_on(&gathering, listing).await?;
            }
            crate::outbox::insert_callbacks(&gathering, extras.callbacks).await?;
            counts.write(&gathering).await
        }
        .await;
        if gathered.is_err() {
            return Ok(None);
        }
        let Some(statement) = joined(gathering.into_statements()) else {
            return Ok(None);
        };
        match self.db.execute_raw(statement).await {
            Ok(_) => {
                self.announce(crate::announce::Change::Events).await;
                Ok(Some(AppendOutcome { version, position }))
            }
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(SqlError::Conflict {
                    stream: stream_text,
                    expected,
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The next position of the log's sequence (PostgreSQL).
    async fn next_position(&self) -> Result<i64, SqlError> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT nextval(pg_get_serial_sequence('events', 'position')) AS position",
            ))
            .await?
            .ok_or_else(|| SqlError::Corrupt {
                position: 0,
                reason: "the log's sequence gave no position".into(),
            })?;
        Ok(row.try_get::<i64>("", "position")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    #[test]
    fn parts_are_joined_with_their_placeholders_renumbered() {
        let joined = joined(vec![
            statement(
                r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2)"#,
                vec![1i64.into(), "one".into()],
            ),
            statement(
                r#"DELETE FROM "b" WHERE "b"."x" = $1 AND "b"."note" <> '$1'"#,
                vec![2i64.into()],
            ),
            statement(
                r#"UPDATE "c" SET "n" = $1 WHERE "id" = $2"#,
                vec![3i64.into(), 4i64.into()],
            ),
        ])
        .unwrap();
        assert_eq!(
            joined.sql,
            r#"WITH w0 AS (INSERT INTO "a" ("x", "y") VALUES ($1, $2) RETURNING 1 AS first), w1 AS (DELETE FROM "b" WHERE "b"."x" = $3 AND "b"."note" <> '$1'), w2 AS (UPDATE "c" SET "n" = $4 WHERE "id" = $5) SELECT first FROM w0"#
        );
        assert_eq!(
            joined.values.unwrap().0,
            vec![
                Value::from(1i64),
                Value::from("one"),
                Value::from(2i64),
                Value::from(3i64),
                Value::from(4i64)
            ]
        );
    }

    #[test]
    fn a_read_or_a_stray_dollar_cannot_be_a_part() {
        assert!(joined(vec![statement("SELECT 1", vec![])]).is_none());
        assert!(joined(vec![statement("INSERT INTO a VALUES ($x)", vec![])]).is_none());
        assert!(joined(Vec::new()).is_none());
    }

    #[test]
    fn only_a_lone_meeting_creation_is_eligible() {
        use switchboard_domain::meeting::{EndReason, MeetingRun};
        let created = DomainEvent::Meeting(MeetingEvent::MeetingCreated {
            tenant: switchboard_domain::ids::TenantId::default_tenant(),
            meeting_id: switchboard_domain::ids::MeetingId::parse("room").unwrap(),
            name: "room".into(),
            run: MeetingRun {
                internal_id: "x".into(),
                server_id: switchboard_domain::ids::ServerId::new(),
                create_time_ms: 0,
                recording_ready_url: None,
                callbacks: None,
            },
        });
        assert!(eligible(true, std::slice::from_ref(&created)));
        assert!(!eligible(false, std::slice::from_ref(&created)), "SQLite");
        assert!(!eligible(true, &[created.clone(), created]));
        let ended = DomainEvent::Meeting(MeetingEvent::MeetingEnded {
            internal_id: "x".into(),
            at_ms: 0,
            reason: EndReason::EndCalled,
        });
        assert!(!eligible(true, std::slice::from_ref(&ended)));
        assert!(!eligible(true, &[]));
    }
}
