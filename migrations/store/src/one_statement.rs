//! A meeting's creation appended in one statement on PostgreSQL.
//!
//! The append of an event is a transaction of several statements: BEGIN,
//! the event, each projection row, the listing, COMMIT, each a round trip
//! to the database and each costing it work of its own beyond the row it
//! writes. For the one append on the hot path, a `MeetingCreated`, the same
//! statements are gathered instead of run (the projection code builds them
//! as it always does, against a [`Gathering`] connection) and sent as one
//! statement: a chain of data-modifying `WITH` parts, atomic as any single
//! statement is. Its position is drawn from the log's sequence by the
//! statement's first part, so the projection rows can carry it: one round
//! trip in all.
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

/// Stands in, among a gathered statement's values, for the position the
/// joined statement draws from the log's sequence itself; no real value is
/// ever this (positions, times and versions are not negative).
const DRAWN_POSITION: i64 = i64::MIN + 0x005b_0a4d;

/// What a [`DRAWN_POSITION`] value becomes in the joined statement.
const POSITION_DRAWN: &str = "(SELECT p FROM drawn)";

/// PostgreSQL statements joined as the parts of one `WITH` statement, their
/// `$n` placeholders renumbered in order. The log's next position is drawn
/// once, first, and stands wherever a statement's value is
/// [`DRAWN_POSITION`]; the statement returns the first part's `position`
/// column (the event's row must come first). `None` when a statement is not
/// one that can be a part (only INSERT, UPDATE and DELETE can), or when the
/// first part does not take the drawn position or any value holds the
/// stand-in in some other form (text, JSON), where it would be stored as is.
pub(crate) fn joined(statements: Vec<Statement>) -> Option<Statement> {
    if statements.is_empty() {
        return None;
    }
    let stand_in = DRAWN_POSITION.to_string();
    let leaked = statements
        .iter()
        .flat_map(|statement| statement.values.iter().flat_map(|values| &values.0))
        .any(|value| match value {
            Value::String(Some(text)) => text.contains(&stand_in),
            Value::Json(Some(json)) => json.to_string().contains(&stand_in),
            _ => false,
        });
    let first_takes_it = statements[0]
        .values
        .as_ref()
        .is_some_and(|Values(values)| values.contains(&Value::BigInt(Some(DRAWN_POSITION))));
    if leaked || !first_takes_it {
        return None;
    }
    let mut sql = String::from(
        "WITH drawn AS (SELECT nextval(pg_get_serial_sequence('events', 'position')) AS p)",
    );
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
        // Each of the statement's values as the joined statement names it.
        let mut names = Vec::new();
        for value in statement.values.map(|Values(v)| v).unwrap_or_default() {
            if value == Value::BigInt(Some(DRAWN_POSITION)) {
                names.push(POSITION_DRAWN.to_owned());
            } else {
                values.push(value);
                names.push(format!("${}", values.len()));
            }
        }
        sql.push_str(&format!(", w{index} AS ("));
        renumbered(&statement.sql, &names, &mut sql)?;
        // The first data-modifying part (w0) is the one the final SELECT
        // reads: it runs before the others (which PostgreSQL runs after the
        // main query), so the event's unique check and row come first, as
        // in the transaction, and concurrent appends take their locks in
        // the same order.
        if index == 0 {
            sql.push_str(" RETURNING \"position\" AS first");
        }
        sql.push(')');
    }
    sql.push_str(" SELECT first FROM w0");
    Some(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
}

/// Copies `sql` to `out` with each `$n` placeholder (outside quoted text
/// and names) replaced by `names[n - 1]`; `None` on a `$` that is not one
/// of them.
fn renumbered(sql: &str, names: &[String], out: &mut String) -> Option<()> {
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
                out.push_str(names.get(number.checked_sub(1)?)?);
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
        let position = DRAWN_POSITION;
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
        match self.db.query_one_raw(statement).await {
            Ok(row) => {
                // Committed: announced whatever the answer says.
                self.announce(crate::announce::Change::Events).await;
                let position = match row.map(|row| row.try_get::<i64>("", "first")) {
                    Some(Ok(position)) => position,
                    _ => {
                        return Err(SqlError::Corrupt {
                            position: 0,
                            reason: "a meeting's creation was appended, but PostgreSQL \
                                     did not return its position"
                                .into(),
                        });
                    }
                };
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    #[test]
    fn parts_are_joined_with_their_placeholders_renumbered_and_the_position_drawn() {
        let drawn = Value::from(DRAWN_POSITION);
        let joined = joined(vec![
            statement(
                r#"INSERT INTO "a" ("position", "y") VALUES ($1, $2)"#,
                vec![drawn.clone(), "one".into()],
            ),
            statement(
                r#"DELETE FROM "b" WHERE "b"."x" = $1 AND "b"."note" <> '$1'"#,
                vec![2i64.into()],
            ),
            statement(
                r#"UPDATE "c" SET "n" = $1, "p" = $3 WHERE "id" = $2"#,
                vec![3i64.into(), 4i64.into(), drawn],
            ),
        ])
        .unwrap();
        assert_eq!(
            joined.sql,
            r#"WITH drawn AS (SELECT nextval(pg_get_serial_sequence('events', 'position')) AS p), w0 AS (INSERT INTO "a" ("position", "y") VALUES ((SELECT p FROM drawn), $1) RETURNING "position" AS first), w1 AS (DELETE FROM "b" WHERE "b"."x" = $2 AND "b"."note" <> '$1'), w2 AS (UPDATE "c" SET "n" = $3, "p" = (SELECT p FROM drawn) WHERE "id" = $4) SELECT first FROM w0"#
        );
        assert_eq!(
            joined.values.unwrap().0,
            vec![
                Value::from("one"),
                Value::from(2i64),
                Value::from(3i64),
                Value::from(4i64)
            ]
        );
    }

    #[tokio::test]
    async fn a_meeting_creation_is_appended_in_one_statement_at_the_position_it_draws() {
        use switchboard_domain::ids::{MeetingId, ServerId, TenantId, meeting_stream};
        use switchboard_domain::meeting::MeetingRun;
        let store = Store::connect(&crate::test_support::fresh_postgres().await)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let metadata = EventMetadata::actor("test");
        let metadata_json = serde_json::to_string(&metadata).unwrap();
        let mut positions = Vec::new();
        for name in ["room-1", "room-2"] {
            let meeting_id = MeetingId::parse(name).unwrap();
            let tenant = TenantId::default_tenant();
            let created = DomainEvent::Meeting(MeetingEvent::MeetingCreated {
                tenant: tenant.clone(),
                meeting_id: meeting_id.clone(),
                name: name.into(),
                run: MeetingRun {
                    internal_id: meeting_id.internal_id(1),
                    server_id: ServerId::new(),
                    create_time_ms: 1,
                    recording_ready_url: None,
                    callbacks: None,
                },
            });
            let outcome = store
                .append_in_one_statement(
                    &meeting_stream(&tenant, &meeting_id),
                    0,
                    &[created],
                    &metadata_json,
                    &metadata,
                    &AppendExtras::default(),
                )
                .await
                .unwrap()
                .expect("appended in one statement, not left to a transaction");
            assert_eq!(outcome.version, 1);
            let row = store
                .db
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT e.position AS event, m.position AS meeting FROM events e \
                     JOIN meetings m ON m.meeting_id = $1 WHERE e.stream LIKE '%' || $1",
                    [name.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.try_get::<i64>("", "event").unwrap(), outcome.position);
            assert_eq!(row.try_get::<i64>("", "meeting").unwrap(), outcome.position);
            positions.push(outcome.position);
        }
        assert!(
            positions[0] > 0 && positions[1] > positions[0],
            "{positions:?}"
        );
    }

    #[test]
    fn a_read_a_stray_dollar_or_a_misplaced_position_cannot_be_joined() {
        let drawn = || Value::from(DRAWN_POSITION);
        assert!(joined(vec![statement("SELECT 1", vec![drawn()])]).is_none());
        assert!(joined(vec![statement("INSERT INTO a VALUES ($x)", vec![drawn()])]).is_none());
        assert!(joined(Vec::new()).is_none());
        assert!(
            joined(vec![statement(
                "INSERT INTO a VALUES ($1, $2)",
                vec![drawn(), 1i64.into()]
            )])
            .is_some()
        );
        assert!(
            joined(vec![statement(
                "INSERT INTO a VALUES ($3)",
                vec![drawn(), 1i64.into()]
            )])
            .is_none(),
            "a placeholder without its value"
        );
        assert!(
            joined(vec![statement(
                "INSERT INTO a VALUES ($1)",
                vec![1i64.into()]
            )])
            .is_none(),
            "the first part does not take the drawn position"
        );
        assert!(
            joined(vec![statement(
                "INSERT INTO a VALUES ($1, $2)",
                vec![drawn(), format!("at {DRAWN_POSITION}").into()]
            )])
            .is_none(),
            "the stand-in written into text"
        );
        assert!(
            joined(vec![statement(
                "INSERT INTO a VALUES ($1, $2)",
                vec![drawn(), serde_json::json!({ "at": DRAWN_POSITION }).into()]
            )])
            .is_none(),
            "the stand-in written into JSON"
        );
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
