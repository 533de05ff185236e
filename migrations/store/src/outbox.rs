//! Writing deliveries to the callback outbox inside an append's
//! transaction (the rest of the outbox is in `callbacks`).

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use switchboard_app::records::{CallbackState, NewCallback};
use switchboard_migrations::entities::callback;

/// Writes new deliveries (an id written before is left as it is).
pub(crate) async fn insert_callbacks<C: ConnectionTrait>(
    db: &C,
    callbacks: &[NewCallback],
) -> Result<(), DbErr> {
    if callbacks.is_empty() {
        return Ok(());
    }
    let rows = callbacks
        .iter()
        .map(|callback| {
            let signing = serde_json::to_string(&callback.signing).map_err(|err| {
                DbErr::Custom(format!("a callback's signing cannot be written: {err}"))
            })?;
            Ok(callback::ActiveModel {
                id: Set(callback.id.clone()),
                kind: Set(callback.kind.as_str().to_owned()),
                tenant: Set(callback.tenant.0.clone()),
                meeting_id: Set(callback.meeting_id.clone()),
                method: Set(callback.method.clone()),
                url: Set(callback.url.clone()),
                content_type: Set(callback.content_type.clone()),
                body: Set(callback.body.clone()),
                signing: Set(signing),
                state: Set(CallbackState::Pending.as_str().to_owned()),
                attempts: Set(0),
                next_attempt_ms: Set(callback.due_ms),
                deadline_ms: Set(callback.deadline_ms),
                created_at_ms: Set(callback.created_at_ms),
                last_status: Set(None),
                last_error: Set(None),
                finished_at_ms: Set(None),
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    callback::Entity::insert_many(rows)
        .on_conflict(
            // Kept once; a pending, unattempted one takes the later URL and
            // due time (the server's own end call over polling's fallback).
            OnConflict::column(callback::Column::Id)
                .update_columns([callback::Column::Url, callback::Column::NextAttemptMs])
                .action_and_where(
                    Expr::col((callback::Entity, callback::Column::State))
                        .eq(CallbackState::Pending.as_str())
                        .and(Expr::col((callback::Entity, callback::Column::Attempts)).eq(0)),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
