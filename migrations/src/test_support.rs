//! Fresh databases for tests: a temporary SQLite file or a new PostgreSQL
//! database on the server named by `SWITCHBOARD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Tests fail, never skip, when
//! PostgreSQL is unreachable.

use sea_orm::{ConnectionTrait, Database};

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres() -> String {
    let admin = postgres_admin_url();
    let name = format!("switchboard_test_{}", uuid::Uuid::new_v4().simple());
    let db = Database::connect(&admin).await.unwrap_or_else(|err| {
        panic!(
            "PostgreSQL at {admin} is needed for tests (set SWITCHBOARD_TEST_POSTGRES_URL): {err}"
        )
    });
    db.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    db.close().await.ok();
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&admin);
    format!("{base}/{name}")
}

/// A SQLite database in a new temporary directory (kept for the process).
pub fn fresh_sqlite() -> String {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    format!("sqlite://{}?mode=rwc", dir.join("switchboard.db").display())
}
