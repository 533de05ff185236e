//! The system under test: a fresh database, the `switchboard` binary as a
//! child process with simulated BBB servers registered, and its memory use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bbb_simulator::Simulator;
use tokio::process::{Child, Command};

use crate::load;

/// How long Switchboard may take to answer `/health` after starting
/// (migrations included).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The database Switchboard runs on for one pass.
#[derive(Debug)]
pub struct Database {
    /// `PostgreSQL` or `SQLite`, for the report.
    pub label: &'static str,
    /// The URL handed to `switchboard --database`.
    pub url: String,
    /// For PostgreSQL: the admin URL and the name of the database to drop.
    created: Option<(String, String)>,
}

impl Database {
    /// Creates a fresh PostgreSQL database `switchboard_bench_<random>` with
    /// `psql ADMIN_URL`, on the server `admin_url` points at.
    pub async fn postgres(admin_url: &str) -> anyhow::Result<Database> {
        let name = format!("switchboard_bench_{}", random_hex(6));
        psql(admin_url, &format!("CREATE DATABASE {name}")).await?;
        Ok(Database {
            label: "PostgreSQL",
            url: with_database(admin_url, &name)?,
            created: Some((admin_url.to_owned(), name)),
        })
    }

    /// A new SQLite file in `dir`.
    pub fn sqlite(dir: &Path) -> Database {
        Database {
            label: "SQLite",
            url: format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
            created: None,
        }
    }

    /// Drops the PostgreSQL database this created (SQLite files go with the
    /// data folder).
    pub async fn drop_created(self) -> anyhow::Result<()> {
        if let Some((admin_url, name)) = self.created {
            psql(
                &admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await?;
        }
        Ok(())
    }
}

/// Runs one SQL statement with `psql`.
async fn psql(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let output = Command::new("psql")
        .arg(admin_url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run psql (is the PostgreSQL client installed?)")?;
    if !output.status.success() {
        bail!(
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `admin_url` with its database name replaced by `name`.
fn with_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let scheme_end = admin_url
        .find("://")
        .map(|at| at + 3)
        .context("the PostgreSQL URL has no scheme")?;
    let (base, query) = match admin_url.find('?') {
        Some(at) => admin_url.split_at(at),
        None => (admin_url, ""),
    };
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |at| scheme_end + at);
    Ok(format!("{}/{name}{query}", &base[..authority_end]))
}

/// Random lower-case hex of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// A running `switchboard serve` child process.
#[derive(Debug)]
pub struct Switchboard {
    /// Where it serves the BBB API.
    pub addr: SocketAddr,
    /// Its process id.
    pub pid: u32,
    child: Child,
    log: PathBuf,
}

impl Switchboard {
    /// Registers the simulators with `switchboard servers add ... --enable`,
    /// then starts `switchboard serve --no-workers` on a free loopback port
    /// with `secret` as the API secret, and waits until `/health` answers.
    /// Its output goes to `switchboard.log` in `data_dir`.
    pub async fn start(
        binary: &Path,
        database: &Database,
        data_dir: &Path,
        secret: &str,
        simulators: &[Simulator],
    ) -> anyhow::Result<Switchboard> {
        let base = |command: &mut Command| {
            command
                .arg("--database")
                .arg(&database.url)
                .arg("--data-dir")
                .arg(data_dir)
                .env("SWITCHBOARD_SECRET", secret)
                .stdin(Stdio::null());
        };
        for simulator in simulators {
            let mut add = Command::new(binary);
            base(&mut add);
            let output = add
                .args([
                    "servers",
                    "add",
                    &simulator.url(),
                    simulator.secret(),
                    "--enable",
                ])
                .output()
                .await
                .with_context(|| format!("cannot run {}", binary.display()))?;
            if !output.status.success() {
                bail!(
                    "`switchboard servers add` failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
        let addr = free_port()?;
        let log = data_dir.join("switchboard.log");
        let log_file = std::fs::File::create(&log)?;
        let mut serve = Command::new(binary);
        base(&mut serve);
        let child = serve
            .args(["serve", "--no-workers", "--listen", &addr.to_string()])
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id().context("switchboard exited at once")?;
        let mut switchboard = Switchboard {
            addr,
            pid,
            child,
            log,
        };
        switchboard.wait_healthy().await?;
        Ok(switchboard)
    }

    /// Polls `/health` until it answers 200.
    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Ok((status, _)) = load::get(self.addr, "/health").await
                && status.is_success()
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("switchboard exited ({status}):\n{}", self.log_tail());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "switchboard did not answer /health within {START_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of its output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Its current and peak resident memory.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.pid)
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A free loopback port: bound, read, released.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?)
}

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now, KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size so far, KiB.
    pub hwm_kib: u64,
}

impl Memory {
    /// Reads `VmRSS` and `VmHWM` of process `pid`.
    pub fn of(pid: u32) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("cannot read /proc/{pid}/status"))?;
        Ok(Memory {
            rss_kib: status_kib(&status, "VmRSS:").context("no VmRSS")?,
            hwm_kib: status_kib(&status, "VmHWM:").context("no VmHWM")?,
        })
    }
}

/// The value in kB of a `/proc/PID/status` line such as `VmRSS:  1234 kB`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// Converts KiB to MB (10^6 bytes), the unit of the targets.
pub fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b").unwrap(),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b").unwrap(),
            "postgres://u:p@h/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b").unwrap(),
            "postgres://h:5432/b"
        );
    }

    #[test]
    fn proc_status_is_read() {
        let status = "Name:\tswitchboard\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(51234));
        assert_eq!(status_kib(status, "VmRSS:"), Some(40000));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert!(Memory::of(std::process::id()).unwrap().hwm_kib > 0);
    }
}
