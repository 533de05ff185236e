//! A delivery owed to a front-end (see the migration `m0009_callbacks`).

use sea_orm::entity::prelude::*;

/// One delivery of the callback outbox.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "callbacks")]
pub struct Model {
    /// Its id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// What it relays (`end-callback`, `analytics`, ...).
    pub kind: String,
    /// Whose it is.
    pub tenant: String,
    /// The front-end's meetingID.
    #[sea_orm(column_type = "Text")]
    pub meeting_id: String,
    /// `GET` or `POST`.
    pub method: String,
    /// The front-end's URL.
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// The body's media type.
    pub content_type: Option<String>,
    /// The body.
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    /// How it is signed (JSON).
    #[sea_orm(column_type = "Text")]
    pub signing: String,
    /// `pending`, `delivered`, `failed` or `dropped`.
    pub state: String,
    /// Attempts started.
    pub attempts: i32,
    /// When the next attempt is due, ms.
    pub next_attempt_ms: i64,
    /// No attempt after this, ms.
    pub deadline_ms: i64,
    /// When it was written, ms.
    pub created_at_ms: i64,
    /// The last answer's status.
    pub last_status: Option<i32>,
    /// The last failure.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// When it left the pending state, ms.
    pub finished_at_ms: Option<i64>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
