//! Which tenant a BBB API request is for, and which secrets may sign it.
//!
//! A tenant is named by the path prefix `/t/<name>/bigbluebutton/api/...` or
//! by the first label of the request's host (`<name>.lb.example.org`). A
//! request naming no tenant is the default tenant's, signed with the global
//! secrets: without any tenant configured Switchboard is a single-tenant
//! balancer. A path naming an unknown tenant answers `checksumError`, as does
//! a request signed with another tenant's secret.

use super::BbbState;
use super::error::BbbError;
use std::sync::Arc;
use switchboard_domain::ids::TenantId;
use switchboard_domain::tenant::TenantConfig;

/// The tenant a request is for.
#[derive(Debug, Clone)]
pub struct ResolvedTenant {
    /// Its id.
    pub id: TenantId,
    /// Its configuration; `None` for the default tenant.
    pub config: Option<Arc<TenantConfig>>,
}

impl ResolvedTenant {
    /// The secrets that may sign its requests.
    pub fn secrets<'a>(&'a self, state: &'a BbbState) -> &'a [String] {
        match &self.config {
            Some(config) => &config.secrets,
            None => &state.secrets,
        }
    }
}

/// The first label of a host name (port removed), unless it is an address.
pub fn host_label(host: &str) -> Option<String> {
    let host = host.trim();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    if name.starts_with('[') || name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let (label, rest) = name.split_once('.')?;
    (!label.is_empty() && !rest.is_empty()).then(|| label.to_ascii_lowercase())
}

/// Finds the tenant of a request from its path prefix (if any) or host.
pub fn resolve(
    state: &BbbState,
    path_tenant: Option<&str>,
    host: Option<&str>,
) -> Result<ResolvedTenant, BbbError> {
    if let Some(name) = path_tenant {
        let config = state
            .meetings
            .routing()
            .tenant(name)
            .ok_or_else(BbbError::checksum)?;
        return Ok(ResolvedTenant {
            id: TenantId(config.name.clone()),
            config: Some(config),
        });
    }
    if let Some(label) = host.and_then(host_label)
        && let Some(config) = state.meetings.routing().tenant(&label)
    {
        return Ok(ResolvedTenant {
            id: TenantId(config.name.clone()),
            config: Some(config),
        });
    }
    Ok(ResolvedTenant {
        id: TenantId::default_tenant(),
        config: None,
    })
}

#[cfg(test)]
mod tests {
    use super::host_label;

    #[test]
    fn the_first_label_of_a_name_names_the_tenant() {
        assert_eq!(host_label("t1.lb.example.org").as_deref(), Some("t1"));
        assert_eq!(host_label("T1.lb.example.org:8443").as_deref(), Some("t1"));
        assert_eq!(host_label("localhost:8090"), None);
        assert_eq!(host_label("127.0.0.1:8090"), None);
        assert_eq!(host_label("[::1]:8090"), None);
        assert_eq!(host_label("lb"), None);
    }
}
