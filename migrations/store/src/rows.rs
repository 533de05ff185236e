//! Conversions from table rows to domain values that more than one module needs.

use switchboard_migrations::entities::server;

/// The operator's settings a server row holds.
pub(crate) fn settings_of(row: &server::Model) -> switchboard_domain::server::ServerSettings {
    switchboard_domain::server::ServerSettings {
        url: row.url.clone(),
        secret: row.secret.clone(),
        tag: row.tag.clone(),
        load_multiplier: row.load_multiplier,
        checksum: row
            .checksum_algorithm
            .as_deref()
            .and_then(switchboard_domain::bbb::checksum::ChecksumAlgorithm::parse),
        metrics_url: row.metrics_url.clone(),
    }
}

/// What a server row holds of its node agent (`None`: never reported).
pub(crate) fn agent_of(row: &server::Model) -> Option<switchboard_domain::server::ServerAgent> {
    serde_json::from_str(row.agent.as_deref()?).ok()
}
