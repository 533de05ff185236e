//! `recordings.breakout`: the JSON column that keeps a breakout room's
//! parent and the rooms a meeting opened, for getRecordings.

/// `recordings.breakout`: a room's parent and the rooms a meeting opened.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct BreakoutColumn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<switchboard_domain::recording::BreakoutOf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<String>,
}

impl BreakoutColumn {
    /// The column's value for a recording's details (null for neither).
    pub(crate) fn of(details: &switchboard_domain::recording::RecordingDetails) -> Option<String> {
        if details.breakout.is_none() && details.breakout_rooms.is_empty() {
            return None;
        }
        serde_json::to_string(&Self {
            parent: details.breakout.clone(),
            rooms: details.breakout_rooms.clone(),
        })
        .ok()
    }
}
