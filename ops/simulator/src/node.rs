//! A node_exporter-like metrics endpoint (`/metrics`): CPU counters that
//! advance with real time at the CPU utilisation set, and memory gauges at
//! the used share set, so a scraper's rates come out as set.

use std::fmt::Write as _;
use std::time::Instant;

/// CPUs the simulated machine has.
const CPUS: u32 = 4;
/// Its memory, bytes (16 GiB).
const MEMORY_BYTES: f64 = 16.0 * 1024.0 * 1024.0 * 1024.0;

/// The simulated machine's CPU and memory.
#[derive(Debug)]
pub(crate) struct Node {
    cpu_percent: f64,
    memory_percent: f64,
    busy_seconds: f64,
    idle_seconds: f64,
    advanced_at: Instant,
    /// Answer 500 instead of metrics.
    pub(crate) failing: bool,
    /// The `Authorization` header required, if any.
    pub(crate) authorization: Option<String>,
    /// Requests for `/metrics`.
    pub(crate) requests: usize,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            cpu_percent: 10.0,
            memory_percent: 30.0,
            // As if up for a while.
            busy_seconds: 4000.0,
            idle_seconds: 36000.0,
            advanced_at: Instant::now(),
            failing: false,
            authorization: None,
            requests: 0,
        }
    }
}

impl Node {
    /// Moves the counters forward to now at the current utilisation.
    fn advance(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.advanced_at).as_secs_f64() * f64::from(CPUS);
        let busy = elapsed * self.cpu_percent / 100.0;
        self.busy_seconds += busy;
        self.idle_seconds += elapsed - busy;
        self.advanced_at = now;
    }

    /// Sets the CPU utilisation from now on (0–100).
    pub(crate) fn set_cpu_percent(&mut self, percent: f64) {
        self.advance();
        self.cpu_percent = percent.clamp(0.0, 100.0);
    }

    /// Sets the used memory (0–100).
    pub(crate) fn set_memory_percent(&mut self, percent: f64) {
        self.memory_percent = percent.clamp(0.0, 100.0);
    }

    /// The Prometheus text node_exporter would answer.
    pub(crate) fn render(&mut self) -> String {
        self.advance();
        let mut text = String::from(
            "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
             # TYPE node_cpu_seconds_total counter\n",
        );
        let per_cpu = f64::from(CPUS);
        for cpu in 0..CPUS {
            let busy = self.busy_seconds / per_cpu;
            let idle = self.idle_seconds / per_cpu;
            for (mode, value) in [
                ("idle", idle),
                ("iowait", 0.0),
                ("system", busy * 0.3),
                ("user", busy * 0.7),
            ] {
                let _ = writeln!(
                    text,
                    "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} {value}"
                );
            }
        }
        let available = MEMORY_BYTES * (1.0 - self.memory_percent / 100.0);
        let _ = write!(
            text,
            "# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.\n\
             # TYPE node_memory_MemAvailable_bytes gauge\n\
             node_memory_MemAvailable_bytes {available:e}\n\
             # HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.\n\
             # TYPE node_memory_MemTotal_bytes gauge\n\
             node_memory_MemTotal_bytes {MEMORY_BYTES:e}\n\
             # HELP node_load1 1m load average.\n\
             # TYPE node_load1 gauge\n\
             node_load1 {}\n",
            self.cpu_percent / 100.0 * per_cpu
        );
        text
    }
}

/// `Basic base64(user:password)`, as a client sends basic auth.
pub(crate) fn basic_authorization(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::from("Basic ");
    for chunk in input.as_bytes().chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_authorization_is_base64() {
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_authorization("a", "b"), "Basic YTpi");
    }

    #[test]
    fn counters_advance_at_the_set_utilisation() {
        let mut node = Node::default();
        node.set_cpu_percent(75.0);
        let (busy, idle) = (node.busy_seconds, node.idle_seconds);
        node.advanced_at -= std::time::Duration::from_secs(10);
        let text = node.render();
        let busy_delta = node.busy_seconds - busy;
        let total_delta = busy_delta + node.idle_seconds - idle;
        assert!((total_delta - 40.0).abs() < 0.1, "{total_delta}");
        assert!((busy_delta / total_delta - 0.75).abs() < 1e-3);
        assert!(text.contains("node_cpu_seconds_total{cpu=\"3\",mode=\"user\"}"));
        assert!(
            text.contains("node_memory_MemTotal_bytes 1.7179869184e10"),
            "{text}"
        );
    }
}
