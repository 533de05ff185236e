//! Fetching a server's metrics endpoint (node_exporter) over HTTP; the text
//! is read by [`switchboard_domain::node_metrics`]. Credentials in the URL
//! are sent as basic auth and never appear in errors.

use std::time::Duration;
use switchboard_domain::node_metrics::{
    MAX_BODY_BYTES, MetricsError, NodeMetrics, parse_node_metrics,
};

/// Fetches metrics endpoints.
#[derive(Debug, Clone)]
pub struct MetricsScraper {
    client: reqwest::Client,
}

impl Default for MetricsScraper {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsScraper {
    /// A scraper that never follows redirects.
    pub fn new() -> Self {
        crate::backend::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client with rustls");
        Self { client }
    }

    /// Reads one endpoint within `timeout`. Credentials in the URL are sent
    /// as basic auth.
    pub async fn scrape(&self, url: &str, timeout: Duration) -> Result<NodeMetrics, MetricsError> {
        let classify = |err: reqwest::Error| {
            if err.is_timeout() {
                MetricsError::Timeout(timeout)
            } else {
                MetricsError::Connect(err.without_url().to_string())
            }
        };
        let response = self
            .client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(MetricsError::Status(status));
        }
        let body = crate::capped::read_capped(response, MAX_BODY_BYTES)
            .await
            .map_err(|err| match err {
                crate::capped::CappedError::TooLarge => MetricsError::Body("too large".into()),
                crate::capped::CappedError::Transfer(err) => classify(err),
            })?;
        let text =
            std::str::from_utf8(&body).map_err(|_| MetricsError::Body("not UTF-8".into()))?;
        parse_node_metrics(text)
    }
}

#[async_trait::async_trait]
impl switchboard_app::ports::MetricsSource for MetricsScraper {
    async fn scrape(&self, url: &str, timeout: Duration) -> Result<NodeMetrics, MetricsError> {
        MetricsScraper::scrape(self, url, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_endpoints_fail_without_their_credentials() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://user:hunter2@127.0.0.1:{port}/metrics");
        let err = MetricsScraper::new()
            .scrape(&url, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, MetricsError::Connect(_)), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn the_simulator_is_read_over_http_with_basic_auth() {
        use bbb_simulator::{Simulator, SimulatorConfig};
        let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
        sim.set_cpu_percent(60.0);
        sim.set_memory_percent(80.0);
        sim.set_metrics_credentials(Some(("prom", "s3cret")));
        let scraper = MetricsScraper::new();
        let timeout = Duration::from_secs(2);
        assert_eq!(
            scraper.scrape(&sim.metrics_url(), timeout).await,
            Err(MetricsError::Status(401))
        );
        let url = sim.metrics_url().replace("http://", "http://prom:s3cret@");
        let first = scraper.scrape(&url, timeout).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = scraper.scrape(&url, timeout).await.unwrap();
        let cpu =
            switchboard_domain::server_metrics::cpu_percent_between(first.cpu, second.cpu).unwrap();
        assert!((cpu - 60.0).abs() < 1.0, "{cpu}");
        assert!((second.memory_percent.unwrap() - 80.0).abs() < 1e-6);
        sim.set_metrics_failing(true);
        assert_eq!(
            scraper.scrape(&url, timeout).await,
            Err(MetricsError::Status(500))
        );
        assert_eq!(sim.metrics_request_count(), 4);
        sim.shutdown().await;
    }
}
