//! PostgreSQL's faster way to the same tables: shadows loaded with `COPY`,
//! their indexes built once the rows are in (as the live table's, under
//! other names), and swapped in by renaming (no row is copied while
//! appends wait).

use super::tables::{self, Table};
use sea_orm::sea_query::Value;
use sea_orm::sqlx::postgres::PgPoolCopyExt as _;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel,
    Iterable, Statement,
};
use std::fmt::Write as _;

/// Rows per `COPY` chunk sent.
const CHUNK_ROWS: usize = 5_000;

/// Makes an empty, unindexed shadow of `table` (an earlier one is dropped).
pub(crate) async fn create_shadow<C: ConnectionTrait>(db: &C, table: &Table) -> Result<(), DbErr> {
    super::tables::drop_shadow(db, table).await?;
    db.execute_unprepared(&format!(
        "CREATE TABLE \"{}\" (LIKE \"{}\" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        table.shadow(),
        table.name
    ))
    .await?;
    Ok(())
}

/// Writes `rows` of entity `E` into the table `into` with `COPY`.
pub(crate) async fn copy_rows<E>(
    db: &DatabaseConnection,
    into: &str,
    rows: impl IntoIterator<Item = E::Model>,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let names = columns
        .iter()
        .map(|column| format!("\"{}\"", sea_orm::IdenStatic::as_str(column)))
        .collect::<Vec<_>>()
        .join(", ");
    let pool = db.get_postgres_connection_pool();
    let copy_err = |err: sea_orm::sqlx::Error| DbErr::Custom(format!("COPY into {into}: {err}"));
    let mut copy = pool
        .copy_in_raw(&format!("COPY \"{into}\" ({names}) FROM STDIN"))
        .await
        .map_err(copy_err)?;
    let mut text = String::new();
    let mut written = 0_u64;
    for row in rows {
        let model = row.into_active_model();
        for (index, column) in columns.iter().enumerate() {
            if index > 0 {
                text.push('\t');
            }
            let value = model.get(*column).into_value();
            copy_value(&mut text, value.as_ref())?;
        }
        text.push('\n');
        written += 1;
        if written.is_multiple_of(CHUNK_ROWS as u64) {
            copy.send(std::mem::take(&mut text).into_bytes())
                .await
                .map_err(copy_err)?;
        }
    }
    if !text.is_empty() {
        copy.send(text.into_bytes()).await.map_err(copy_err)?;
    }
    copy.finish().await.map_err(copy_err)?;
    Ok(written)
}

/// Writes one value in `COPY`'s text format.
fn copy_value(out: &mut String, value: Option<&Value>) -> Result<(), DbErr> {
    const NULL: &str = "\\N";
    let written = match value {
        None => write!(out, "{NULL}"),
        Some(Value::Bool(Some(value))) => write!(out, "{}", if *value { "t" } else { "f" }),
        Some(Value::Bool(None)) => write!(out, "{NULL}"),
        Some(Value::Int(value)) => write_or_null(out, value.as_ref()),
        Some(Value::BigInt(value)) => write_or_null(out, value.as_ref()),
        Some(Value::SmallInt(value)) => write_or_null(out, value.as_ref()),
        Some(Value::Double(value)) => write_or_null(out, value.as_ref()),
        Some(Value::ChronoDateTimeUtc(value)) => {
            write_or_null(out, value.as_ref().map(|at| at.to_rfc3339()).as_ref())
        }
        Some(Value::String(value)) => {
            match value {
                Some(text) => escape_into(out, text),
                None => out.push_str(NULL),
            }
            Ok(())
        }
        Some(other) => {
            return Err(DbErr::Custom(format!(
                "a rebuilt row holds a value COPY is not taught: {other:?}"
            )));
        }
    };
    written.map_err(|err| DbErr::Custom(err.to_string()))
}

fn write_or_null<T: std::fmt::Display>(out: &mut String, value: Option<&T>) -> std::fmt::Result {
    match value {
        Some(value) => write!(out, "{value}"),
        None => write!(out, "\\N"),
    }
}

/// `COPY` text escaping: backslash, tab, newline and carriage return.
fn escape_into(out: &mut String, text: &str) {
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
}

/// An index of a live table, to build on its shadow.
#[derive(Debug, Clone)]
pub(crate) struct LiveIndex {
    name: String,
    definition: String,
    /// The primary key constraint it backs, if it does.
    constraint: Option<String>,
}

/// The live table's indexes.
async fn live_indexes<C: ConnectionTrait>(db: &C, table: &Table) -> Result<Vec<LiveIndex>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT i.indexname AS name, i.indexdef AS definition, c.conname AS constraint_name \
             FROM pg_indexes i \
             LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.contype = 'p' \
               AND c.conrelid = (quote_ident(i.schemaname) || '.' || quote_ident(i.tablename))::regclass \
             WHERE i.schemaname = current_schema() AND i.tablename = $1",
            [table.name.clone().into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(LiveIndex {
                name: row.try_get("", "name")?,
                definition: row.try_get("", "definition")?,
                constraint: row.try_get("", "constraint_name")?,
            })
        })
        .collect()
}

/// Builds on the shadow of `table` the indexes (and primary key) of the
/// live one, named `rebuild_<name>`.
pub(crate) async fn index_shadow<C: ConnectionTrait>(db: &C, table: &Table) -> Result<(), DbErr> {
    let shadow = table.shadow();
    for index in live_indexes(db, table).await? {
        let sql = if index.constraint.is_some() {
            let keys = table
                .keys
                .iter()
                .map(|key| format!("\"{key}\""))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "ALTER TABLE \"{shadow}\" ADD CONSTRAINT \"rebuild_{}\" PRIMARY KEY ({keys})",
                index.name
            )
        } else {
            let unique = if index.definition.starts_with("CREATE UNIQUE") {
                "UNIQUE "
            } else {
                ""
            };
            let (_, method) = index.definition.split_once(" USING ").ok_or_else(|| {
                DbErr::Custom(format!("unexpected index definition: {}", index.definition))
            })?;
            format!(
                "CREATE {unique}INDEX \"rebuild_{}\" ON \"{shadow}\" USING {method}",
                index.name
            )
        };
        db.execute_unprepared(&sql).await?;
    }
    db.execute_unprepared(&format!("ANALYZE \"{shadow}\""))
        .await?;
    Ok(())
}

/// Puts the shadow of `table` in its place (in the caller's transaction).
/// `keep` keeps the live table as `before_<name>` (for a comparison the
/// caller rolls back); otherwise it is dropped and the shadow's indexes take
/// the live names.
pub(crate) async fn rename_in<C: ConnectionTrait>(
    db: &C,
    table: &Table,
    keep: bool,
) -> Result<(), DbErr> {
    let name = &table.name;
    let indexes = live_indexes(db, table).await?;
    tables::replace_by_shadow(db, table, keep).await?;
    if keep {
        return Ok(());
    }
    for index in indexes {
        let sql = match &index.constraint {
            Some(constraint) => format!(
                "ALTER TABLE \"{name}\" RENAME CONSTRAINT \"rebuild_{constraint}\" TO \"{constraint}\""
            ),
            None => format!("ALTER INDEX \"rebuild_{0}\" RENAME TO \"{0}\"", index.name),
        };
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_the_format_reserves() {
        let mut out = String::new();
        copy_value(&mut out, Some(&Value::String(Some("a\tb\\c\nd\re".into())))).unwrap();
        out.push('|');
        copy_value(&mut out, Some(&Value::String(None))).unwrap();
        out.push('|');
        copy_value(&mut out, Some(&Value::Bool(Some(true)))).unwrap();
        out.push('|');
        copy_value(&mut out, Some(&Value::Double(Some(1.5)))).unwrap();
        assert_eq!(out, "a\\tb\\\\c\\nd\\re|\\N|t|1.5");
    }

    #[test]
    fn a_value_copy_is_not_taught_is_refused() {
        let mut out = String::new();
        assert!(copy_value(&mut out, Some(&Value::Bytes(Some(vec![1])))).is_err());
    }
}
