//! The system under test: a fresh database, the `switchboard` binary as a
//! child process with simulated BBB servers registered, and its memory use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bbb_simulator::{Simulator, SimulatorConfig};
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

/// Rows and transactions PostgreSQL counted for one database
/// (`pg_stat_database`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Committed transactions.
    pub transactions: u64,
    /// Rows inserted.
    pub inserted: u64,
    /// Rows updated.
    pub updated: u64,
    /// Rows deleted.
    pub deleted: u64,
}

impl Database {
    /// PostgreSQL's counters for this database (`None` for SQLite). They
    /// lag by up to a second: wait before reading them after a phase.
    pub async fn write_stats(&self) -> anyhow::Result<Option<WriteStats>> {
        let Some((admin_url, name)) = &self.created else {
            return Ok(None);
        };
        let output = Command::new("psql")
            .arg(admin_url)
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-Atq",
                "-F",
                " ",
                "-c",
                &format!(
                    "select xact_commit, tup_inserted, tup_updated, tup_deleted \
                     from pg_stat_database where datname = '{name}'"
                ),
            ])
            .stdin(Stdio::null())
            .output()
            .await
            .context("cannot run psql")?;
        let text = String::from_utf8_lossy(&output.stdout);
        let numbers: Vec<u64> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        // No row yet: nothing was counted for the new database so far.
        let [transactions, inserted, updated, deleted] = numbers[..] else {
            if text.trim().is_empty() {
                return Ok(Some(WriteStats::default()));
            }
            bail!("unexpected pg_stat_database answer: {text}");
        };
        Ok(Some(WriteStats {
            transactions,
            inserted,
            updated,
            deleted,
        }))
    }
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

/// How `switchboard serve` runs.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Run the health poller in the process (as apalis jobs on the
    /// database), with `SWITCHBOARD_HEALTH_INTERVAL_SECS` set to this many
    /// seconds, and without any other `SWITCHBOARD_*` variable of this
    /// environment; `None`: `--no-workers`, environment inherited.
    pub health_interval_secs: Option<f64>,
    /// A command `serve` runs under (e.g. `valgrind --tool=callgrind`),
    /// with the binary and its arguments after it; empty: run it directly.
    pub serve_prefix: Vec<String>,
    /// How long `/health` may take to answer after the start (default 30 s).
    pub start_timeout: Option<Duration>,
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
    /// then starts `switchboard serve` on a free loopback port with `secret`
    /// as the API secret (with the poller as `options` say), and waits until
    /// `/health` answers. Its output goes to `switchboard.log` in `data_dir`.
    pub async fn start_with(
        binary: &Path,
        database: &Database,
        data_dir: &Path,
        secret: &str,
        simulators: &[Simulator],
        options: &ServeOptions,
    ) -> anyhow::Result<Switchboard> {
        let base = |command: &mut Command| {
            if options.health_interval_secs.is_some() {
                for (key, _) in std::env::vars_os() {
                    if key.to_string_lossy().starts_with("SWITCHBOARD_") {
                        command.env_remove(key);
                    }
                }
            }
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
        let mut serve = match options.serve_prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        base(&mut serve);
        serve.args(["serve", "--listen", &addr.to_string()]);
        match options.health_interval_secs {
            Some(interval) => {
                serve.env("SWITCHBOARD_HEALTH_INTERVAL_SECS", interval.to_string());
            }
            None => {
                serve.arg("--no-workers");
            }
        }
        let child = serve
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
        switchboard
            .wait_healthy(options.start_timeout.unwrap_or(START_TIMEOUT))
            .await?;
        Ok(switchboard)
    }

    /// Polls `/health` until it answers 200, for at most `limit`.
    async fn wait_healthy(&mut self, limit: Duration) -> anyhow::Result<()> {
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
            if started.elapsed() > limit {
                bail!(
                    "switchboard did not answer /health within {limit:?}:\n{}",
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

/// A simulated pool and a `switchboard serve` polling it: what a run of
/// the getMeetings and soak benchmarks works against.
#[derive(Debug)]
pub struct PoolRun<'a> {
    /// `PostgreSQL` or `SQLite`.
    pub label: &'static str,
    /// The running Switchboard.
    pub switchboard: &'a Switchboard,
    /// The simulated servers, all registered and enabled.
    pub simulators: &'a [Simulator],
    /// The BBB API secret.
    pub secret: &'a str,
}

/// Starts `servers` simulators and `switchboard serve` (`binary`, polling
/// every `interval_secs`) on a fresh database (PostgreSQL at `postgres`,
/// else SQLite), runs `body`, and cleans everything up whatever happens.
/// `name` prefixes the data folder and the log lines.
pub async fn with_pool<T>(
    name: &str,
    binary: &Path,
    postgres: Option<&str>,
    servers: usize,
    interval_secs: f64,
    body: impl AsyncFnOnce(PoolRun<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let data_dir = std::env::temp_dir().join(format!("switchboard-{name}-{}", random_hex(4)));
    std::fs::create_dir_all(&data_dir)?;
    let database = match postgres {
        Some(admin_url) => Database::postgres(admin_url).await?,
        None => Database::sqlite(&data_dir),
    };
    let label = database.label;
    let secret = random_hex(20);
    let mut simulators = Vec::with_capacity(servers);
    let result = async {
        for _ in 0..servers {
            simulators.push(
                Simulator::start(SimulatorConfig {
                    secret: random_hex(20),
                    ..SimulatorConfig::default()
                })
                .await?,
            );
        }
        let switchboard = Switchboard::start_with(
            binary,
            &database,
            &data_dir,
            &secret,
            &simulators,
            &ServeOptions {
                health_interval_secs: Some(interval_secs),
                ..ServeOptions::default()
            },
        )
        .await?;
        eprintln!(
            "[{name} {label}] switchboard pid {} at http://{} with workers, polling {servers} \
             simulated servers every {interval_secs} s",
            switchboard.pid, switchboard.addr
        );
        let outcome = body(PoolRun {
            label,
            switchboard: &switchboard,
            simulators: &simulators,
            secret: &secret,
        })
        .await;
        if outcome.is_err() {
            eprintln!(
                "[{name} {label}] switchboard log:\n{}",
                switchboard.log_tail()
            );
        }
        switchboard.stop().await;
        outcome
    }
    .await;
    for simulator in &simulators {
        simulator.shutdown().await;
    }
    if let Err(err) = database.drop_created().await {
        eprintln!("[{name} {label}] could not drop the database: {err:#}");
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

/// A free loopback port: bound, read, released.
pub fn free_port() -> anyhow::Result<SocketAddr> {
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

/// CPU time a process has used so far, from `/proc/PID/stat`, in clock
/// ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// `utime`: ticks in user mode.
    pub user: u64,
    /// `stime`: ticks in kernel mode.
    pub system: u64,
}

impl CpuTime {
    /// Reads `utime` and `stime` of process `pid`.
    pub fn of(pid: u32) -> anyhow::Result<CpuTime> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
        parse_stat_times(&stat).with_context(|| format!("unexpected /proc/{pid}/stat: {stat}"))
    }

    /// Ticks used since `earlier`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// User plus system ticks.
    pub fn total(self) -> u64 {
        self.user + self.system
    }
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/PID/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so the fields are
/// counted from the last `)`.
fn parse_stat_times(stat: &str) -> Option<CpuTime> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    Some(CpuTime {
        user: fields.get(11)?.parse().ok()?,
        system: fields.get(12)?.parse().ok()?,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, the Linux value, if
/// that fails).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// File descriptors process `pid` has open (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot read /proc/{pid}/fd"))?
        .count())
}

/// The soft and hard limits on open files of process `pid` (`None` for
/// unlimited), from `/proc/PID/limits`.
pub fn open_file_limits(pid: u32) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .with_context(|| format!("cannot read /proc/{pid}/limits"))?;
    parse_open_file_limits(&limits).context("no `Max open files` line in /proc/PID/limits")
}

/// The `Max open files` line of `/proc/PID/limits`: soft and hard limit.
fn parse_open_file_limits(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let mut values = line["Max open files".len()..].split_whitespace();
    let value = |text: Option<&str>| match text? {
        "unlimited" => Some(None),
        number => number.parse().ok().map(Some),
    };
    Some((value(values.next())?, value(values.next())?))
}

/// The number of threads of process `pid`, from `/proc/PID/status`.
pub fn threads(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|rest| rest.trim().parse().ok())
        .context("no Threads line")
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
    fn proc_stat_times_are_read() {
        let stat = "4242 (tokio (worker) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    517 83 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615";
        assert_eq!(
            parse_stat_times(stat),
            Some(CpuTime {
                user: 517,
                system: 83
            })
        );
        assert_eq!(parse_stat_times("12 (x) S 1"), None);
        let own = CpuTime::of(std::process::id()).unwrap();
        assert!(own.since(CpuTime::default()).total() == own.total());
    }

    #[test]
    fn open_file_limits_are_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95402                95402                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(
            parse_open_file_limits(limits),
            Some((Some(1024), Some(524288)))
        );
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_open_file_limits(unlimited), Some((None, None)));
        assert!(open_file_limits(std::process::id()).is_ok());
        assert!(open_fds(std::process::id()).unwrap() > 0);
        assert!(threads(std::process::id()).unwrap() >= 1);
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
