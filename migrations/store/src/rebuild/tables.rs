//! The tables a rebuild writes: each projection's shadow table (written in
//! bulk while the live one keeps answering), the copy that swaps it in,
//! and the comparison `replay --check` reports.

use sea_orm::sea_query::Alias;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic, IntoActiveModel,
    Iterable, PrimaryKeyToColumn, QueryTrait, Statement,
};

/// Most bind parameters one statement carries (below SQLite's 32,766 and
/// PostgreSQL's 65,535).
const MAX_PARAMETERS: usize = 30_000;

/// A projection table: its name, columns and key columns.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) columns: Vec<String>,
    pub(crate) keys: Vec<String>,
}

impl Table {
    /// The table of entity `E`.
    pub(crate) fn of<E: EntityTrait + Default>() -> Self {
        Self {
            name: E::default().table_name().to_owned(),
            columns: E::Column::iter()
                .map(|column| column.as_str().to_owned())
                .collect(),
            keys: E::PrimaryKey::iter()
                .map(|key| key.into_column().as_str().to_owned())
                .collect(),
        }
    }

    /// Its shadow table's name.
    pub(crate) fn shadow(&self) -> String {
        format!("rebuild_{}", self.name)
    }

    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|column| format!("\"{column}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Drops the shadow of `table`, if there is one.
pub(crate) async fn drop_shadow<C: ConnectionTrait>(db: &C, table: &Table) -> Result<(), DbErr> {
    db.execute_unprepared(&format!("DROP TABLE IF EXISTS \"{}\"", table.shadow()))
        .await?;
    Ok(())
}

/// Puts the shadow of `table` in its place (in the caller's transaction):
/// the live table is dropped, or with `keep` kept as `before_<name>` (for
/// a comparison the caller rolls back). Each database then restores the
/// live table's index names its own way.
pub(crate) async fn replace_by_shadow<C: ConnectionTrait>(
    db: &C,
    table: &Table,
    keep: bool,
) -> Result<(), DbErr> {
    let (name, shadow) = (&table.name, table.shadow());
    if keep {
        db.execute_unprepared(&format!(
            "ALTER TABLE \"{name}\" RENAME TO \"before_{name}\""
        ))
        .await?;
    } else {
        db.execute_unprepared(&format!("DROP TABLE \"{name}\""))
            .await?;
    }
    db.execute_unprepared(&format!("ALTER TABLE \"{shadow}\" RENAME TO \"{name}\""))
        .await?;
    Ok(())
}

/// Writes `rows` of entity `E` into the table `into`, many rows per statement.
pub(crate) async fn insert_rows<E, C>(
    db: &C,
    into: &str,
    rows: impl IntoIterator<Item = E::Model>,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
    C: ConnectionTrait,
{
    let per_statement = (MAX_PARAMETERS / E::Column::iter().count()).max(1);
    let mut rows = rows.into_iter().peekable();
    let mut written = 0;
    while rows.peek().is_some() {
        let batch: Vec<E::ActiveModel> = rows
            .by_ref()
            .take(per_statement)
            .map(IntoActiveModel::into_active_model)
            .collect();
        written += batch.len() as u64;
        let mut statement = E::insert_many(batch).into_query();
        statement.into_table(Alias::new(into));
        db.execute(&statement).await?;
    }
    Ok(written)
}

/// Keeps a copy of `table` as it is, for [`differences`] (a temporary
/// table: gone with the caller's transaction).
pub(crate) async fn keep_before<C: ConnectionTrait>(db: &C, table: &Table) -> Result<(), DbErr> {
    let (name, columns) = (&table.name, table.column_list());
    db.execute_unprepared(&format!(
        "CREATE TEMPORARY TABLE \"before_{name}\" AS SELECT {columns} FROM \"{name}\""
    ))
    .await?;
    // Indexed by key, as the comparison matches rows by key.
    let keys = table
        .keys
        .iter()
        .map(|key| format!("\"{key}\""))
        .collect::<Vec<_>>()
        .join(", ");
    db.execute_unprepared(&format!(
        "CREATE INDEX \"before_{name}_keys\" ON \"before_{name}\" ({keys})"
    ))
    .await?;
    Ok(())
}

/// How a table differs between its copy kept by [`keep_before`] and now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDifference {
    /// The table.
    pub table: String,
    /// Rows only before (in the live projection, not in the rebuilt one).
    pub only_live: u64,
    /// Rows only now (in the rebuilt projection, not in the live one).
    pub only_rebuilt: u64,
    /// Keys of a few differing rows.
    pub examples: Vec<String>,
}

/// How `table` now differs from its kept copy (`None`: not at all); rows
/// matching `ignored` (an SQL condition) are left out on both sides. Rows
/// are matched by key: one pass over each side, through the key indexes.
pub(crate) async fn differences<C: ConnectionTrait>(
    db: &C,
    table: &Table,
    ignored: Option<&str>,
) -> Result<Option<TableDifference>, DbErr> {
    let name = &table.name;
    // The tables themselves where nothing is left out, so the key indexes
    // serve the matching (SQLite does not index a subquery's rows).
    let side = |table: &str| match ignored {
        None => format!("\"{table}\""),
        Some(ignored) => format!("(SELECT * FROM \"{table}\" WHERE NOT ({ignored}))"),
    };
    let now = side(name);
    let before = side(&format!("before_{name}"));
    let distinct = match db.get_database_backend() {
        DbBackend::Postgres => "IS DISTINCT FROM",
        _ => "IS NOT",
    };
    let same_key = |left: &str, right: &str| {
        table
            .keys
            .iter()
            .map(|key| format!("{left}.\"{key}\" = {right}.\"{key}\""))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let changed_columns = table
        .columns
        .iter()
        .map(|column| format!("n.\"{column}\" {distinct} b.\"{column}\""))
        .collect::<Vec<_>>()
        .join(" OR ");
    let changed = format!(
        "SELECT n.* FROM {now} n JOIN {before} b ON {} WHERE {changed_columns}",
        same_key("n", "b")
    );
    let only_now = format!(
        "SELECT n.* FROM {now} n WHERE NOT EXISTS (SELECT 1 FROM {before} b WHERE {})",
        same_key("n", "b")
    );
    let only_before = format!(
        "SELECT b.* FROM {before} b WHERE NOT EXISTS (SELECT 1 FROM {now} n WHERE {})",
        same_key("n", "b")
    );
    let (changed_count, mut examples) = count_and_keys(db, table, &changed).await?;
    let (added, more) = count_and_keys(db, table, &only_now).await?;
    examples.extend(more);
    let (removed, more) = count_and_keys(db, table, &only_before).await?;
    examples.extend(more);
    if changed_count + added + removed == 0 {
        return Ok(None);
    }
    examples.sort();
    examples.dedup();
    examples.truncate(5);
    Ok(Some(TableDifference {
        table: name.clone(),
        only_live: changed_count + removed,
        only_rebuilt: changed_count + added,
        examples,
    }))
}

/// How many rows `rows` (a query) gives, and the keys of up to five.
async fn count_and_keys<C: ConnectionTrait>(
    db: &C,
    table: &Table,
    rows: &str,
) -> Result<(u64, Vec<String>), DbErr> {
    let backend = db.get_database_backend();
    let count = db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT COUNT(*) AS n FROM ({rows}) AS counted"),
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    if count == 0 {
        return Ok((0, Vec::new()));
    }
    let keys = table
        .keys
        .iter()
        .map(|key| format!("CAST(\"{key}\" AS TEXT) AS \"{key}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let found = db
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT {keys} FROM ({rows}) AS differing LIMIT 5"),
        ))
        .await?;
    let examples = found
        .iter()
        .map(|row| {
            table
                .keys
                .iter()
                .map(|key| row.try_get::<String>("", key).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    Ok((u64::try_from(count).unwrap_or(0), examples))
}
