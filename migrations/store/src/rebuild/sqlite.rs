//! SQLite's way to swap a rebuilt table in: the shadow is made from the
//! live table's own definition (its primary key fills as rows go in), and
//! the swap drops the live table, renames the shadow and builds the live
//! table's other indexes, under their own names, on the rows at once.

use super::tables::{self, Table};
use sea_orm::{ConnectionTrait, DbErr, Statement};

/// The definitions (`sql` of `sqlite_schema`) of a table and its indexes.
async fn definitions<C: ConnectionTrait>(
    db: &C,
    table: &str,
) -> Result<(String, Vec<String>), DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT type, sql FROM sqlite_schema WHERE tbl_name = ? AND sql IS NOT NULL",
            [table.into()],
        ))
        .await?;
    let mut create = None;
    let mut indexes = Vec::new();
    for row in rows {
        let kind: String = row.try_get("", "type")?;
        let sql: String = row.try_get("", "sql")?;
        match kind.as_str() {
            "table" => create = Some(sql),
            "index" => indexes.push(sql),
            _ => {}
        }
    }
    let create = create.ok_or_else(|| DbErr::Custom(format!("no table {table}")))?;
    Ok((create, indexes))
}

/// Makes an empty shadow of `table` with its columns and primary key (an
/// earlier one is dropped).
pub(crate) async fn create_shadow<C: ConnectionTrait>(db: &C, table: &Table) -> Result<(), DbErr> {
    super::tables::drop_shadow(db, table).await?;
    let (create, _) = definitions(db, &table.name).await?;
    let quoted = format!("\"{}\"", table.name);
    let at = create.find(&quoted).ok_or_else(|| {
        DbErr::Custom(format!("unexpected definition of {}: {create}", table.name))
    })?;
    let shadow = format!(
        "CREATE TABLE \"{}\"{}",
        table.shadow(),
        &create[at + quoted.len()..]
    );
    db.execute_unprepared(&shadow).await?;
    Ok(())
}

/// Puts the shadow of `table` in its place (in the caller's write
/// transaction). `keep` keeps the live table as `before_<name>` (for a
/// comparison the caller rolls back).
pub(crate) async fn rename_in<C: ConnectionTrait>(
    db: &C,
    table: &Table,
    keep: bool,
) -> Result<(), DbErr> {
    let (_, indexes) = definitions(db, &table.name).await?;
    tables::replace_by_shadow(db, table, keep).await?;
    if keep {
        return Ok(());
    }
    for index in indexes {
        db.execute_unprepared(&index).await?;
    }
    Ok(())
}
