//! A created run's `<meeting>` listing row, written on a connection or
//! inside an append's transaction (so this module needs nothing of the
//! store: both it and the append call here).

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DbErr, EntityTrait};
use switchboard_app::records::MeetingListing;
use switchboard_migrations::entities::meeting_listing;

/// Writes (or replaces) the listing of a run on `db`, a connection or the
/// transaction of an append.
pub(crate) async fn put_meeting_listing_on<C: sea_orm::ConnectionTrait>(
    db: &C,
    listing: &MeetingListing,
) -> Result<(), DbErr> {
    let row = meeting_listing::ActiveModel {
        internal_id: Set(listing.internal_id.clone()),
        server_id: Set(listing.server_id.to_string()),
        created_at_ms: Set(listing.created_at_ms),
        xml: Set(listing.xml.clone()),
    };
    meeting_listing::Entity::insert(row)
        .on_conflict(
            OnConflict::column(meeting_listing::Column::InternalId)
                .update_columns([
                    meeting_listing::Column::ServerId,
                    meeting_listing::Column::CreatedAtMs,
                    meeting_listing::Column::Xml,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
