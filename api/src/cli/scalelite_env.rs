//! `switchboard import-scalelite-env`: turns a Scalelite `.env` file (the
//! `/etc/default/scalelite` of its Docker install) into the equivalent
//! `switchboard.toml`. [`translate`] does the work without touching the
//! disk; [`run`] reads the file, prints or writes the TOML and lists on
//! standard error what could not be mapped.
//!
//! Scalelite's meaning of each variable is that of its
//! `config/application.rb`: a flag is on only when it says `true` (in any
//! case), an empty value counts as unset, secrets and checksum algorithms
//! are separated by `:`, parameter lists by `,`.

use anyhow::Context;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::tenant::{MIN_SECRET_LEN, is_strong_secret};
use toml::Value;

/// What a Scalelite `.env` file becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The `switchboard.toml` text, secrets included.
    pub toml: String,
    /// What was not mapped, in file order, as `(variable, reason)`; a line
    /// that is not `KEY=VALUE` appears as `line N`. No reason holds a
    /// secret's value.
    pub unmapped: Vec<(String, String)>,
}

/// Translates the text of a Scalelite `.env` file; `source` (its path)
/// is named in the header comment of the TOML.
pub fn translate(text: &str, source: &str) -> Translation {
    let (env, problems) = Env::parse(text);
    let mut importer = Importer {
        env,
        settings: Vec::new(),
        rules: Vec::new(),
        unmapped: problems,
    };
    importer.run();
    importer.finish(source)
}

/// Runs the command: translates `file` and prints the TOML on standard
/// output, or writes it to `out` with owner-only permissions; each unmapped
/// variable goes to standard error as `VAR: reason`. A file that cannot be
/// read ends the process with status 2.
pub fn run(file: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!(
                "error: cannot read the Scalelite .env file {}: {err}",
                file.display()
            );
            std::process::exit(2);
        }
    };
    let translation = translate(&text, &file.display().to_string());
    for (var, reason) in &translation.unmapped {
        eprintln!("{var}: {reason}");
    }
    match out {
        None => print_stdout(&translation.toml),
        Some(path) => {
            write_private(path, &translation.toml)?;
            eprintln!(
                "Wrote {}. It holds the load balancer's secrets: keep it private.",
                path.display()
            );
            Ok(())
        }
    }
}

/// Prints on standard output; a closed pipe is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

/// Writes `text` to `path`, readable by its owner only (it holds secrets).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut file| {
            // An existing file keeps its mode on open: made private first.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            file.write_all(text.as_bytes())
        })
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Scalelite's published folder when `RECORDING_PUBLISH_DIR` is unset,
/// without its `published` part.
const DEFAULT_TREE: &str = "/var/bigbluebutton";

/// The reason given for a secret Switchboard refuses.
fn weak_secret() -> String {
    format!(
        "shorter than {MIN_SECRET_LEN} characters or holds whitespace: Switchboard refuses such \
         a secret, so it is left out (give the front-ends using it a long random one, e.g. \
         `openssl rand -hex 20`)"
    )
}

// ---------------------------------------------------------------------------
// The .env file.

/// One variable of the file.
#[derive(Debug)]
struct Var {
    value: String,
    /// Line of its (last) assignment, from 1.
    line: usize,
    /// Whether a mapping looked at it.
    taken: bool,
}

/// The variables of an `.env` file; the last assignment of each wins.
#[derive(Debug, Default)]
struct Env {
    vars: HashMap<String, Var>,
}

impl Env {
    /// Reads the file; lines that are not `KEY=VALUE` come back as problems.
    fn parse(text: &str) -> (Self, Vec<Skipped>) {
        let mut env = Self::default();
        let mut problems = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, line) in text.lines().enumerate() {
            match parse_line(line) {
                Ok(None) => {}
                Ok(Some((key, value))) => {
                    let var = Var {
                        value,
                        line: index + 1,
                        taken: false,
                    };
                    env.vars.insert(key, var);
                }
                Err(reason) => problems.push(Skipped {
                    line: index + 1,
                    key: format!("line {}", index + 1),
                    reason: reason.to_owned(),
                }),
            }
        }
        (env, problems)
    }

    /// The value as written (empty included); marks the variable as seen.
    fn take_raw(&mut self, key: &str) -> Option<String> {
        let var = self.vars.get_mut(key)?;
        var.taken = true;
        Some(var.value.clone())
    }

    /// The value, unless it is empty (Scalelite treats that as unset).
    fn take(&mut self, key: &str) -> Option<String> {
        self.take_raw(key).filter(|value| !value.trim().is_empty())
    }

    /// Whether the value says `true`, as Scalelite's `casecmp?('true')`.
    fn take_flag(&mut self, key: &str) -> bool {
        self.take(key)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    }

    /// Line of a variable's assignment (0 when it is not in the file).
    fn line(&self, key: &str) -> usize {
        self.vars.get(key).map_or(0, |var| var.line)
    }

    /// Variables no mapping looked at, in file order, with their values.
    fn leftovers(&self) -> Vec<(String, String)> {
        let mut left: Vec<(&String, &Var)> =
            self.vars.iter().filter(|(_, var)| !var.taken).collect();
        left.sort_by_key(|(_, var)| var.line);
        left.into_iter()
            .map(|(key, var)| (key.clone(), var.value.clone()))
            .collect()
    }
}

/// One line: `None` for blanks and comments, else the variable and value.
fn parse_line(line: &str) -> Result<Option<(String, String)>, &'static str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let (key, value) = line.split_once('=').ok_or("not a KEY=VALUE line")?;
    let key = key.trim();
    if !is_variable_name(key) {
        return Err("not a KEY=VALUE line (the part before `=` is not a variable name)");
    }
    Ok(Some((key.to_owned(), parse_value(value.trim_start())?)))
}

/// Whether `name` is a shell variable name.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value: `"double"` (with `\` escapes), `'single'` (literal) or bare,
/// where ` # ...` starts a comment.
fn parse_value(raw: &str) -> Result<String, &'static str> {
    let (value, rest) = if let Some(inside) = raw.strip_prefix('"') {
        double_quoted(inside)?
    } else if let Some(inside) = raw.strip_prefix('\'') {
        let end = inside.find('\'').ok_or(UNTERMINATED)?;
        (inside[..end].to_owned(), &inside[end + 1..])
    } else {
        let end = raw
            .char_indices()
            .find(|&(at, c)| c == '#' && raw[..at].ends_with([' ', '\t']))
            .map_or(raw.len(), |(at, _)| at);
        return Ok(raw[..end].trim_end().to_owned());
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(value)
    } else {
        Err("text after the closing quote")
    }
}

/// The reason given for a quote that is never closed.
const UNTERMINATED: &str = "a quote is not closed on its line (values spanning lines are not read)";

/// The inside of a double-quoted value (after the opening quote) and what
/// follows the closing one.
fn double_quoted(text: &str) -> Result<(String, &str), &'static str> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[at + 1..])),
            '\\' => match chars.next().ok_or(UNTERMINATED)?.1 {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    Err(UNTERMINATED)
}

// ---------------------------------------------------------------------------
// The TOML.

/// The tables of the output, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Top,
    Health,
    Load,
    Recordings,
    Meetings,
    Fsapi,
    Scalelite,
}

impl Section {
    const ALL: [Section; 7] = [
        Self::Top,
        Self::Health,
        Self::Load,
        Self::Recordings,
        Self::Meetings,
        Self::Fsapi,
        Self::Scalelite,
    ];

    /// The table's name; `None` for the top-level keys.
    fn table(self) -> Option<&'static str> {
        match self {
            Self::Top => None,
            Self::Health => Some("health"),
            Self::Load => Some("load"),
            Self::Recordings => Some("recordings"),
            Self::Meetings => Some("meetings"),
            Self::Fsapi => Some("fsapi"),
            Self::Scalelite => Some("scalelite"),
        }
    }
}

/// One key of the output, with the comment lines above it (the first names
/// the Scalelite variable it comes from).
#[derive(Debug)]
struct Setting {
    section: Section,
    key: &'static str,
    value: Value,
    comments: Vec<String>,
}

/// `[[policy.create]]` or `[[policy.join]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleList {
    Create,
    Join,
}

/// One parameter rule of the output.
#[derive(Debug)]
struct Rule {
    list: RuleList,
    from: &'static str,
    action: &'static str,
    param: String,
    value: Option<Value>,
}

/// A variable (or line) that was not mapped.
#[derive(Debug)]
struct Skipped {
    line: usize,
    key: String,
    reason: String,
}

/// The translation in progress.
struct Importer {
    env: Env,
    settings: Vec<Setting>,
    rules: Vec<Rule>,
    unmapped: Vec<Skipped>,
}

impl Importer {
    /// Maps every variable, in the order the output lists them.
    fn run(&mut self) {
        self.set(
            Section::Scalelite,
            "admin_api",
            true,
            "Scalelite serves its admin API (/scalelite/api/, signed with the load balancer \
             secret); keep that path internal",
        );
        self.listen();
        self.public_url();
        self.secrets();
        self.checksums();
        self.redis();
        self.database();
        self.timeouts();
        self.health();
        self.load();
        self.recording_dirs();
        self.recording_flags();
        self.protected_recordings();
        let max_duration = self.create_policy();
        self.join_policy();
        self.meetings();
        self.voice_bridges();
        self.fsapi(max_duration);
        self.leftovers();
    }

    /// The TOML text and the unmapped variables in file order.
    fn finish(mut self, source: &str) -> Translation {
        self.unmapped.sort_by_key(|skipped| skipped.line);
        Translation {
            toml: self.render(source),
            unmapped: self
                .unmapped
                .into_iter()
                .map(|skipped| (skipped.key, skipped.reason))
                .collect(),
        }
    }

    /// Adds a key; `from` is its comment, naming the Scalelite variable.
    fn set(
        &mut self,
        section: Section,
        key: &'static str,
        value: impl Into<Value>,
        from: impl Into<String>,
    ) -> &mut Setting {
        self.settings.push(Setting {
            section,
            key,
            value: value.into(),
            comments: vec![from.into()],
        });
        self.settings.last_mut().expect("just pushed")
    }

    /// Reports `key` as not mapped; a second reason joins the first.
    fn skip(&mut self, key: &str, reason: impl Into<String>) {
        let reason = reason.into();
        if let Some(skipped) = self.unmapped.iter_mut().find(|s| s.key == key) {
            skipped.reason.push_str("; ");
            skipped.reason.push_str(&reason);
            return;
        }
        self.unmapped.push(Skipped {
            line: self.env.line(key),
            key: key.to_owned(),
            reason,
        });
    }

    /// A whole number (`what` names its unit in the reason), reported and
    /// `None` when it is not one.
    fn whole(&mut self, key: &str, text: &str, what: &str) -> Option<u32> {
        let parsed = text.trim().parse().ok();
        if parsed.is_none() {
            self.skip(
                key,
                format!("{} is not a whole number of {what}", shape(text)),
            );
        }
        parsed
    }

    /// A whole number of at least 1 (a count of polls).
    fn count(&mut self, key: &str, text: &str) -> Option<u32> {
        let count = self.whole(key, text, "polls")?;
        if count == 0 {
            self.skip(key, "0: Switchboard needs at least 1");
            return None;
        }
        Some(count)
    }

    /// Seconds (a decimal number, not negative), taken from the file.
    fn take_seconds(&mut self, key: &str) -> Option<f64> {
        let text = self.env.take(key)?;
        let seconds = text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0);
        if seconds.is_none() {
            self.skip(key, format!("{} is not a number of seconds", shape(&text)));
        }
        seconds
    }

    /// Whole minutes taken from the file, as seconds.
    fn take_minutes_as_seconds(&mut self, key: &str) -> Option<i64> {
        let text = self.env.take(key)?;
        self.whole(key, &text, "minutes")
            .map(|minutes| i64::from(minutes) * 60)
    }

    /// `BIND` (Puma's bind URL) or `PORT` -> `listen`.
    fn listen(&mut self) {
        let port = self.env.take("PORT");
        if let Some(bind) = self.env.take("BIND") {
            match bind_address(&bind) {
                Ok(addr) => {
                    self.set(Section::Top, "listen", addr.to_string(), "BIND");
                }
                Err(reason) => self.skip("BIND", reason),
            }
            return;
        }
        let Some(port) = port else { return };
        match port.trim().parse::<u16>() {
            Ok(number) if number > 0 => {
                let listen = format!("0.0.0.0:{number}");
                self.set(
                    Section::Top,
                    "listen",
                    listen,
                    "PORT (Puma listened on every address)",
                );
            }
            _ => self.skip("PORT", format!("{} is not a TCP port", shape(&port))),
        }
    }

    /// `URL_HOST` -> `public_url`.
    fn public_url(&mut self) {
        let Some(host) = self.env.take("URL_HOST") else {
            return;
        };
        let host = host.trim().trim_end_matches('/');
        let url = if host.starts_with("https://") || host.starts_with("http://") {
            host.to_owned()
        } else if host.contains(['/', ' ', '\t', '\n']) {
            self.skip("URL_HOST", format!("{} is not a host name", shape(host)));
            return;
        } else {
            format!("https://{host}")
        };
        self.set(
            Section::Top,
            "public_url",
            url,
            "URL_HOST (front-ends and viewers reach the load balancer there over HTTPS)",
        );
    }

    /// `LOADBALANCER_SECRET` and `LOADBALANCER_SECRETS` -> `secret`, `secrets`.
    fn secrets(&mut self) {
        let mut accepted = self.accepted_secrets().into_iter();
        if let Some((secret, from)) = accepted.next() {
            let from = if from == "LOADBALANCER_SECRET" {
                from
            } else {
                "LOADBALANCER_SECRETS (its first secret, as LOADBALANCER_SECRET gives none)"
            };
            self.set(Section::Top, "secret", secret, from);
        }
        let rest: Vec<String> = accepted.map(|(secret, _)| secret).collect();
        if !rest.is_empty() {
            self.set(
                Section::Top,
                "secrets",
                rest,
                "LOADBALANCER_SECRETS (colon-separated in Scalelite), without the one used as `secret`",
            );
        }
    }

    /// The usable secrets, first `LOADBALANCER_SECRET`, each once, with the
    /// variable it came from; the ones Switchboard refuses are reported.
    fn accepted_secrets(&mut self) -> Vec<(String, &'static str)> {
        let mut accepted: Vec<(String, &'static str)> = Vec::new();
        if let Some(secret) = self.env.take("LOADBALANCER_SECRET") {
            if is_strong_secret(&secret) {
                accepted.push((secret, "LOADBALANCER_SECRET"));
            } else {
                self.skip("LOADBALANCER_SECRET", weak_secret());
            }
        }
        let list = self.env.take("LOADBALANCER_SECRETS").unwrap_or_default();
        for (index, secret) in list.split(':').filter(|s| !s.is_empty()).enumerate() {
            if !is_strong_secret(secret) {
                let reason = format!("secret number {} is {}", index + 1, weak_secret());
                self.skip("LOADBALANCER_SECRETS", reason);
            } else if !accepted.iter().any(|(known, _)| known == secret) {
                accepted.push((secret.to_owned(), "LOADBALANCER_SECRETS"));
            }
        }
        accepted
    }

    /// `LOADBALANCER_CHECKSUM_ALGORITHM` -> `checksum_algorithms` and the
    /// `backend_checksum` Scalelite signs its calls to servers with.
    fn checksums(&mut self) {
        const KEY: &str = "LOADBALANCER_CHECKSUM_ALGORITHM";
        let Some(text) = self.env.take(KEY) else {
            return;
        };
        let mut algorithms = Vec::new();
        for name in text.split(':').map(str::trim).filter(|n| !n.is_empty()) {
            match ChecksumAlgorithm::parse(name) {
                Some(algorithm) if !algorithms.contains(&algorithm) => algorithms.push(algorithm),
                Some(_) => {}
                None => self.skip(
                    KEY,
                    format!(
                        "unknown algorithm {} left out (SHA1, SHA256, SHA384, SHA512)",
                        shape(name)
                    ),
                ),
            }
        }
        if algorithms.is_empty() {
            self.skip(KEY, "no algorithm Switchboard knows: every one is accepted");
            return;
        }
        let names: Vec<&str> = algorithms.iter().map(|a| a.name()).collect();
        self.set(
            Section::Top,
            "checksum_algorithms",
            names,
            "LOADBALANCER_CHECKSUM_ALGORITHM (colon-separated in Scalelite)",
        );
        use ChecksumAlgorithm::{Sha1, Sha256, Sha512};
        if let Some(strongest) = [Sha512, Sha256, Sha1]
            .into_iter()
            .find(|a| algorithms.contains(a))
        {
            self.set(
                Section::Top,
                "backend_checksum",
                strongest.name(),
                "LOADBALANCER_CHECKSUM_ALGORITHM: Scalelite signs its calls to servers with \
                 the strongest of SHA512, SHA256 and SHA1 it allows",
            );
        }
    }

    /// `REDIS_URL` -> `redis_url`.
    fn redis(&mut self) {
        if let Some(url) = self.env.take("REDIS_URL") {
            self.set(Section::Top, "redis_url", url, "REDIS_URL")
                .comments
                .push(
                    "Switchboard keeps only its job queue there (named by `job_namespace`); \
                     Scalelite's keys are not read"
                        .to_owned(),
                );
        }
    }

    /// `DATABASE_URL` cannot be reused.
    fn database(&mut self) {
        if self.env.take("DATABASE_URL").is_some() {
            self.skip(
                "DATABASE_URL",
                "Switchboard keeps its own schema; give it a new, empty database \
                 (SWITCHBOARD_DATABASE or `database`) — Scalelite's tables are not read",
            );
        }
    }

    /// `CONNECT_TIMEOUT` + `RESPONSE_TIMEOUT` -> `backend_timeout_ms` and
    /// `[health] timeout_ms`.
    fn timeouts(&mut self) {
        let connect = self.take_seconds("CONNECT_TIMEOUT");
        let response = self.take_seconds("RESPONSE_TIMEOUT");
        if connect.is_none() && response.is_none() {
            return;
        }
        let millis = ((connect.unwrap_or(5.0) + response.unwrap_or(10.0)) * 1000.0).round();
        if millis < 1.0 {
            let reason = "CONNECT_TIMEOUT + RESPONSE_TIMEOUT is 0: Switchboard needs a timeout";
            self.skip("CONNECT_TIMEOUT", reason);
            return;
        }
        let millis = millis.min(i64::MAX as f64) as i64;
        let from = "CONNECT_TIMEOUT + RESPONSE_TIMEOUT (5 s and 10 s when unset), in milliseconds";
        self.set(Section::Top, "backend_timeout_ms", millis, from);
        self.set(Section::Health, "timeout_ms", millis, from);
    }

    /// The health thresholds and `POLL_INTERVAL`.
    fn health(&mut self) {
        for (key, setting) in [
            ("SERVER_HEALTHY_THRESHOLD", "online_after"),
            ("SERVER_UNHEALTHY_THRESHOLD", "offline_after"),
        ] {
            let Some(text) = self.env.take(key) else {
                continue;
            };
            if let Some(count) = self.count(key, &text) {
                self.set(Section::Health, setting, count, key);
            }
        }
        if let Some(seconds) = self.take_seconds("POLL_INTERVAL") {
            if seconds > 0.0 {
                self.set(
                    Section::Health,
                    "interval_secs",
                    seconds,
                    "POLL_INTERVAL (seconds)",
                );
            } else {
                self.skip("POLL_INTERVAL", "0: Switchboard needs a positive interval");
            }
        }
    }

    /// `LOAD_MIN_USER_COUNT` and `LOAD_JOIN_BUFFER_TIME`.
    fn load(&mut self) {
        if let Some(text) = self.env.take("LOAD_MIN_USER_COUNT")
            && let Some(users) = self.whole("LOAD_MIN_USER_COUNT", &text, "users")
        {
            let from = "LOAD_MIN_USER_COUNT (a young meeting counts as at least this many users)";
            self.set(Section::Load, "young_size", users, from);
        }
        if let Some(seconds) = self.take_minutes_as_seconds("LOAD_JOIN_BUFFER_TIME") {
            let from = "LOAD_JOIN_BUFFER_TIME (minutes), in seconds";
            self.set(Section::Load, "young_seconds", seconds as f64, from);
        }
    }

    /// The spool, the recording tree and its work folder.
    fn recording_dirs(&mut self) {
        if let Some(spool) = self.env.take("RECORDING_SPOOL_DIR") {
            let spool = spool.trim().to_owned();
            self.set(
                Section::Recordings,
                "spool_dir",
                spool,
                "RECORDING_SPOOL_DIR",
            );
        }
        let tree = match self.env.take("RECORDING_PUBLISH_DIR") {
            Some(publish) => self.publish_dir(&publish),
            None => Some(DEFAULT_TREE.to_owned()),
        };
        if let Some(unpublish) = self.env.take("RECORDING_UNPUBLISH_DIR") {
            self.unpublish_dir(&unpublish, tree.as_deref());
        }
        if self.env.take("RECORDING_WORK_DIR").is_some() {
            self.skip(
                "RECORDING_WORK_DIR",
                "Switchboard extracts archives into its recording tree itself; it has no work folder",
            );
        }
        if let Some(seconds) = self.take_seconds("RECORDING_IMPORT_POLL_INTERVAL") {
            let from = "RECORDING_IMPORT_POLL_INTERVAL (seconds between rescans of the spool)";
            self.set(Section::Recordings, "rescan_interval_secs", seconds, from);
        }
    }

    /// `RECORDING_PUBLISH_DIR` -> `[recordings] dir` (its parent); the tree, if mapped.
    fn publish_dir(&mut self, publish: &str) -> Option<String> {
        let Some(tree) = tree_of(publish, "published") else {
            self.skip(
                "RECORDING_PUBLISH_DIR",
                format!(
                    "{} does not end in `/published`: Switchboard's `[recordings] dir` holds \
                     `published/` and `unpublished/` below one folder; move the recordings \
                     into such a tree and set `dir` to it",
                    quoted(publish)
                ),
            );
            return None;
        };
        self.set(
            Section::Recordings,
            "dir",
            tree.clone(),
            "RECORDING_PUBLISH_DIR without its `published` folder \
             (Switchboard keeps `published/` and `unpublished/` below `dir`)",
        );
        Some(tree)
    }

    /// `RECORDING_UNPUBLISH_DIR` must be `unpublished/` beside `published/`.
    fn unpublish_dir(&mut self, unpublish: &str, tree: Option<&str>) {
        let found = tree_of(unpublish, "unpublished");
        if tree.is_some() && found.as_deref() == tree {
            return;
        }
        let reason = match tree {
            Some(tree) => format!(
                "Switchboard keeps unpublished recordings beside the published ones, in \
                 `{tree}/unpublished`; move them there"
            ),
            None => "RECORDING_PUBLISH_DIR could not be mapped, so neither can this \
                     (Switchboard keeps `published/` and `unpublished/` below one `dir`)"
                .to_owned(),
        };
        self.skip("RECORDING_UNPUBLISH_DIR", reason);
    }

    /// `RECORDING_DISABLED`, `RECORDING_IMPORT_UNPUBLISHED` and
    /// `RECORDING_PLAYBACK_FORMATS`.
    fn recording_flags(&mut self) {
        if self.env.take_flag("RECORDING_DISABLED") {
            self.set(
                Section::Recordings,
                "import",
                false,
                "RECORDING_DISABLED=true",
            )
            .comments
            .push(
                "Switchboard stops importing; Scalelite also switched the recording API \
                     calls off, which Switchboard has no setting for"
                    .to_owned(),
            );
        }
        if self.env.take_flag("RECORDING_IMPORT_UNPUBLISHED") {
            self.skip(
                "RECORDING_IMPORT_UNPUBLISHED",
                "importing recordings as unpublished is not supported yet",
            );
        }
        if self.env.take("RECORDING_PLAYBACK_FORMATS").is_some() {
            self.skip(
                "RECORDING_PLAYBACK_FORMATS",
                "Switchboard serves every format it imports",
            );
        }
    }

    /// The protected-recording settings.
    fn protected_recordings(&mut self) {
        if self.env.take_flag("PROTECTED_RECORDINGS_ENABLED") {
            self.skip(
                "PROTECTED_RECORDINGS_ENABLED",
                "Switchboard protects recordings per recording (BBB's protect flag / \
                 updateRecordings); nothing to set globally",
            );
        }
        for (key, setting, what) in [
            (
                "PROTECTED_RECORDINGS_TOKEN_TIMEOUT",
                "link_ttl_secs",
                "how long a one-time playback link is valid",
            ),
            (
                "PROTECTED_RECORDINGS_TIMEOUT",
                "cookie_ttl_secs",
                "how long the playback cookie is valid",
            ),
        ] {
            if let Some(seconds) = self.take_minutes_as_seconds(key) {
                let from = format!("{key} (minutes), in seconds: {what}");
                self.set(Section::Recordings, setting, seconds, from);
            }
        }
    }

    /// The create rules; returns `MAX_MEETING_DURATION` when it sets a limit.
    fn create_policy(&mut self) -> Option<u32> {
        self.param_values("DEFAULT_CREATE_PARAMS", RuleList::Create, "default");
        self.param_values("OVERRIDE_CREATE_PARAMS", RuleList::Create, "override");
        self.param_blocks("CREATE_EXCLUDE_PARAMS", RuleList::Create);
        let text = self.env.take("MAX_MEETING_DURATION")?;
        let minutes = self
            .whole("MAX_MEETING_DURATION", &text, "minutes")
            .filter(|&minutes| minutes > 0)?;
        self.rules.push(Rule {
            list: RuleList::Create,
            from: "MAX_MEETING_DURATION (minutes; BBB's `duration`)",
            action: "max",
            param: "duration".to_owned(),
            value: Some(Value::from(minutes)),
        });
        Some(minutes)
    }

    /// The join rules.
    fn join_policy(&mut self) {
        self.param_values("DEFAULT_JOIN_PARAMS", RuleList::Join, "default");
        self.param_values("OVERRIDE_JOIN_PARAMS", RuleList::Join, "override");
        self.param_blocks("JOIN_EXCLUDE_PARAMS", RuleList::Join);
    }

    /// `param=value,param=value` -> `default` or `override` rules; the last
    /// value of a parameter wins, as in Scalelite's hash.
    fn param_values(&mut self, key: &'static str, list: RuleList, action: &'static str) {
        let Some(text) = self.env.take(key) else {
            return;
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for entry in text.split(',').filter(|e| !e.trim().is_empty()) {
            let Some((param, value)) = entry.split_once('=') else {
                let reason = format!(
                    "entry {} has no `=` (param=value expected); left out",
                    shape(entry)
                );
                self.skip(key, reason);
                continue;
            };
            let param = param.trim();
            if let Some(problem) = param_problem(param) {
                self.skip(key, problem);
            } else if let Some(pair) = pairs.iter_mut().find(|(known, _)| known == param) {
                pair.1 = value.to_owned();
            } else {
                pairs.push((param.to_owned(), value.to_owned()));
            }
        }
        for (param, value) in pairs {
            let value = Some(Value::from(value));
            self.rules.push(Rule {
                list,
                from: key,
                action,
                param,
                value,
            });
        }
    }

    /// `param,param` -> `block` rules.
    fn param_blocks(&mut self, key: &'static str, list: RuleList) {
        let Some(text) = self.env.take(key) else {
            return;
        };
        let mut params: Vec<&str> = Vec::new();
        for param in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(problem) = param_problem(param) {
                self.skip(key, problem);
            } else if !params.contains(&param) {
                params.push(param);
            }
        }
        for param in params {
            self.rules.push(Rule {
                list,
                from: key,
                action: "block",
                param: param.to_owned(),
                value: None,
            });
        }
    }

    /// getMeetings, getRecordings and multitenancy.
    fn meetings(&mut self) {
        if self.env.take_flag("GET_MEETINGS_API_DISABLED") {
            let from = "GET_MEETINGS_API_DISABLED=true (getMeetings answers with no meetings)";
            self.set(Section::Meetings, "get_meetings", false, from);
        }
        if self.env.take_flag("GET_RECORDINGS_API_FILTERED") {
            let from =
                "GET_RECORDINGS_API_FILTERED=true (getRecordings needs meetingID or recordID)";
            self.set(Section::Meetings, "get_recordings_filtered", true, from);
        }
        if self.env.take_flag("MULTITENANCY_ENABLED") {
            let comments = &mut self
                .set(
                    Section::Meetings,
                    "tenant_metadata",
                    true,
                    "MULTITENANCY_ENABLED=true (creates get meta_tenant-id and meta_tenant-name)",
                )
                .comments;
            comments.push(
                "Tenants are not in this file: create them with `switchboard tenants create` \
                 or through the Scalelite API"
                    .to_owned(),
            );
        }
    }

    /// `VOICE_BRIDGE_LEN` and `USE_EXTERNAL_VOICE_BRIDGE`, with Scalelite's
    /// defaults when unset.
    fn voice_bridges(&mut self) {
        match self.env.take("VOICE_BRIDGE_LEN") {
            None => {
                self.set(
                    Section::Meetings,
                    "voice_bridge_length",
                    9u32,
                    "VOICE_BRIDGE_LEN is not set: Scalelite defaults to 9, kept so dial-in \
                     numbers keep their length",
                );
            }
            Some(text) => match self.whole("VOICE_BRIDGE_LEN", &text, "digits") {
                Some(digits) if (4..=9).contains(&digits) => {
                    self.set(
                        Section::Meetings,
                        "voice_bridge_length",
                        digits,
                        "VOICE_BRIDGE_LEN",
                    );
                }
                Some(digits) => self.skip(
                    "VOICE_BRIDGE_LEN",
                    format!("{digits} digits: Switchboard allocates 4 to 9"),
                ),
                None => {}
            },
        }
        let keep = match self.env.take("USE_EXTERNAL_VOICE_BRIDGE") {
            None => {
                let from = "USE_EXTERNAL_VOICE_BRIDGE is not set: Scalelite defaults to false \
                            (it always allocates)";
                self.set(
                    Section::Meetings,
                    "keep_requested_voice_bridge",
                    false,
                    from,
                );
                return;
            }
            Some(text) => text.trim().eq_ignore_ascii_case("true"),
        };
        let setting = self.set(
            Section::Meetings,
            "keep_requested_voice_bridge",
            keep,
            "USE_EXTERNAL_VOICE_BRIDGE",
        );
        if keep {
            setting.comments.push(
                "When the requested number is taken, Scalelite allocated another one; \
                 Switchboard refuses the create with nonUniqueVoiceBridge"
                    .to_owned(),
            );
        }
    }

    /// `FSAPI_PASSWORD` and `FSAPI_MAX_DURATION` -> `[fsapi]` (served by
    /// default, as Scalelite serves it), left out when neither they nor
    /// `MAX_MEETING_DURATION` is set.
    fn fsapi(&mut self, max_meeting_duration: Option<u32>) {
        let password = self.env.take_raw("FSAPI_PASSWORD");
        let max = self.env.take("FSAPI_MAX_DURATION");
        if password.is_none() && max.is_none() && max_meeting_duration.is_none() {
            return;
        }
        self.set(
            Section::Fsapi,
            "enabled",
            true,
            "Scalelite always serves its /fsapi dial plan",
        );
        match password {
            Some(password) if !password.is_empty() => {
                self.set(Section::Fsapi, "password", password, "FSAPI_PASSWORD");
            }
            Some(_) => self.skip(
                "FSAPI_PASSWORD",
                "empty: Scalelite then answered /fsapi without a password; Switchboard always \
                 asks for one (`[fsapi] password`, else the first secret)",
            ),
            None => {}
        }
        let minutes = match max {
            Some(text) => self
                .whole("FSAPI_MAX_DURATION", &text, "minutes")
                .map(|minutes| (minutes, "FSAPI_MAX_DURATION (minutes)")),
            None => max_meeting_duration.map(|minutes| {
                let from = "FSAPI_MAX_DURATION is not set: MAX_MEETING_DURATION, as in Scalelite";
                (minutes, from)
            }),
        };
        if let Some((minutes, from)) = minutes {
            self.set(Section::Fsapi, "max_duration_minutes", minutes, from);
        }
    }

    /// Every variable no mapping took: known ones with why they are
    /// ignored, the rest as unknown.
    fn leftovers(&mut self) {
        for (key, value) in self.env.leftovers() {
            let reason = ignored_reason(&key, &value);
            self.skip(&key, reason);
        }
    }

    /// The TOML text.
    fn render(&self, source: &str) -> String {
        let mut text = header(source);
        for section in Section::ALL {
            let mut settings = self
                .settings
                .iter()
                .filter(|setting| setting.section == section)
                .peekable();
            if settings.peek().is_none() {
                continue;
            }
            if let Some(table) = section.table() {
                text.push_str(&format!("\n[{table}]\n"));
            }
            for (index, setting) in settings.enumerate() {
                if index > 0 || section == Section::Top {
                    text.push('\n');
                }
                render_setting(&mut text, setting);
            }
        }
        for rule in &self.rules {
            render_rule(&mut text, rule);
        }
        text
    }
}

/// The comment block the output starts with.
fn header(source: &str) -> String {
    let source: String = source
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!(
        "# switchboard.toml generated by `switchboard import-scalelite-env` from the\n\
         # Scalelite settings in {source}.\n\
         # It holds the load balancer's secrets: keep it private.\n\
         # Scalelite variables that could not be mapped were listed on standard error;\n\
         # every other setting keeps Switchboard's default (see ops/switchboard.example.toml).\n"
    )
}

/// Comment lines, then `key = value`.
fn render_setting(text: &mut String, setting: &Setting) {
    for comment in &setting.comments {
        text.push_str(&format!("# {comment}\n"));
    }
    text.push_str(&format!("{} = {}\n", setting.key, setting.value));
}

/// A `[[policy.create]]` or `[[policy.join]]` table.
fn render_rule(text: &mut String, rule: &Rule) {
    let list = match rule.list {
        RuleList::Create => "create",
        RuleList::Join => "join",
    };
    text.push_str(&format!(
        "\n# {}\n[[policy.{list}]]\naction = {}\nparam = {}\n",
        rule.from,
        Value::from(rule.action),
        Value::from(rule.param.as_str()),
    ));
    if let Some(value) = &rule.value {
        text.push_str(&format!("value = {value}\n"));
    }
}

// ---------------------------------------------------------------------------
// Helpers.

/// A bad value as shown in a reason: quoted, at most 40 characters.
/// Never used for secrets.
fn shape(value: &str) -> String {
    let value = value.trim();
    let short: String = value.chars().take(40).collect();
    let more = if value.chars().count() > 40 {
        "…"
    } else {
        ""
    };
    quoted(&format!("{short}{more}"))
}

/// A value (a path, a name) in backquotes, control characters escaped.
fn quoted(value: &str) -> String {
    format!("`{}`", value.trim().escape_debug())
}

/// The folder holding `<leaf>` when `dir` ends in `/<leaf>` (trailing
/// slashes ignored).
fn tree_of(dir: &str, leaf: &str) -> Option<String> {
    let dir = dir.trim().trim_end_matches('/');
    let parent = dir.strip_suffix(leaf)?.strip_suffix('/')?;
    let parent = parent.trim_end_matches('/');
    Some(if parent.is_empty() { "/" } else { parent }.to_owned())
}

/// Puma's `tcp://HOST:PORT` as a socket address.
fn bind_address(bind: &str) -> Result<SocketAddr, String> {
    let Some(address) = bind.trim().strip_prefix("tcp://") else {
        return Err(format!(
            "{}: only a tcp:// address can become `listen` (Unix sockets and TLS binds \
             are not supported); PORT is unused while BIND is set, as in Puma",
            shape(bind)
        ));
    };
    address.trim_end_matches('/').parse().map_err(|_| {
        format!(
            "{} is not tcp://IP:PORT; set `listen` by hand (PORT is unused while BIND is set, \
             as in Puma)",
            shape(bind)
        )
    })
}

/// Why a parameter name cannot be in a rule (as Switchboard's policy check).
fn param_problem(param: &str) -> Option<String> {
    let valid = !param.is_empty()
        && param.len() <= 128
        && param
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Some(format!(
            "{} is not a parameter name; left out",
            shape(param)
        ));
    }
    if matches!(param, "meetingID" | "checksum") {
        return Some(format!("`{param}` cannot be set by a policy; left out"));
    }
    None
}

/// Why a Scalelite variable without a mapping is ignored.
fn ignored_reason(key: &str, value: &str) -> String {
    let reason = match key {
        "SECRET_KEY_BASE" => "Rails cookie key; Switchboard keeps its own keys",
        "RAILS_ENV" | "RAILS_SERVE_STATIC_FILES" | "BUNDLE_GEMFILE" => {
            "Rails setting; Switchboard has no equivalent"
        }
        "RAILS_LOG_TO_STDOUT" => {
            "Switchboard always logs to standard error (`log_format`; level: SWITCHBOARD_LOG)"
        }
        "RAILS_LOG_LEVEL" => "set the log level with SWITCHBOARD_LOG (e.g. `info`)",
        "WEB_CONCURRENCY" | "RAILS_MAX_THREADS" | "RAILS_MIN_THREADS" => {
            "Puma's processes and threads; Switchboard is one multi-threaded process \
             (`max_connections` caps its clients)"
        }
        "REDIS_POOL" => "Switchboard sizes its Redis connections itself",
        "REDIS_NAMESPACE" => {
            "Switchboard names its queues with `job_namespace`; Scalelite's keys are not read"
        }
        "DB_DISABLED" => "Switchboard always keeps a database (SQLite in `data_dir` by default)",
        "DB_CONNECTION_RETRY_COUNT" | "PREPARED_STATEMENT" => {
            "Rails database setting; Switchboard has no equivalent"
        }
        "SERVER_ID_IS_HOSTNAME" => {
            "Switchboard gives each server a UUID; `servers sync` matches the file's entries by their URL after the first sync"
        }
        "POLLER_THREADS" => {
            "Switchboard polls up to `[health] concurrency` servers at once (default 64)"
        }
        "POLLER_WAIT_TIMEOUT" => {
            "a poll's timeout is `[health] timeout_ms` (from CONNECT_TIMEOUT and RESPONSE_TIMEOUT)"
        }
        "INTERVAL" => "not read by Scalelite's services; POLL_INTERVAL sets the poll interval",
        "RECORDING_IMPORT_POLL" => {
            "Switchboard watches the spool and also rescans it every \
             `[recordings] rescan_interval_secs`"
        }
        "BUILD_NUMBER" => "Switchboard reports its own version",
        "DEFAULT_LOCALE" => "Switchboard has no equivalent",
        "DEFAULT_MEETING_TTL" => {
            "Switchboard keeps meetings in its database and ends them by polling; there is no TTL"
        }
        "VOICE_BRIDGE_MIN" | "VOICE_BRIDGE_MAX" => {
            "no equivalent (voice bridges have `[meetings] voice_bridge_length` digits)"
        }
        "CLOUDFRONT_URL" => "recordings on S3/CloudFront are not supported",
        "SCALELITE_RECORDING_DIR" => {
            return format!(
                "Scalelite's Docker mount, /var/bigbluebutton inside its containers (here {}): \
                 if Switchboard runs outside them, point `[recordings] dir` and `spool_dir` at \
                 the host folders",
                quoted(value)
            );
        }
        _ => prefix_reason(key),
    };
    reason.to_owned()
}

/// Why variables of a known family are ignored.
fn prefix_reason(key: &str) -> &'static str {
    const FAMILIES: [(&str, &str); 6] = [
        ("LRS_", "per-tenant LRS is not supported"),
        ("KC_", "per-tenant LRS is not supported"),
        ("S3_", "recordings on S3/CloudFront are not supported"),
        ("AWS_", "recordings on S3/CloudFront are not supported"),
        (
            "NGINX_",
            "setting of Scalelite's nginx container; see ops/nginx for Switchboard's",
        ),
        ("SCALELITE_", "Scalelite's Docker/systemd setting"),
    ];
    FAMILIES
        .iter()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map_or(
            "not a Scalelite setting Switchboard knows",
            |&(_, reason)| reason,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Settings};
    use switchboard_domain::tenant::ParamRule;

    /// A Scalelite `/etc/default/scalelite` as a Docker install has it.
    const FULL: &str = r#"# Scalelite settings
URL_HOST=lb.example.org
SECRET_KEY_BASE=8b1f0c7e5d2a4f6e9c3b1a0d7e5f2c4b
LOADBALANCER_SECRET="d8f6ac0e4c2b1f7a9e3d5c8b"
export LOADBALANCER_SECRETS='d8f6ac0e4c2b1f7a9e3d5c8b:oldsecret-1234567890:tiny9'
LOADBALANCER_CHECKSUM_ALGORITHM=SHA1:SHA256
DATABASE_URL=postgresql://scalelite:hunter2-db@db/scalelite
REDIS_URL=redis://redis:6379/0

# Docker
SCALELITE_TAG=v1.6
SCALELITE_RECORDING_DIR=/mnt/scalelite-recordings/var/bigbluebutton
NGINX_SSL=true
PORT=3000

LOAD_MIN_USER_COUNT=20
LOAD_JOIN_BUFFER_TIME=10
SERVER_HEALTHY_THRESHOLD=2
SERVER_UNHEALTHY_THRESHOLD=4
POLL_INTERVAL=30
CONNECT_TIMEOUT=2.5
RESPONSE_TIMEOUT=8

RECORDING_SPOOL_DIR=/var/bigbluebutton/spool
RECORDING_PUBLISH_DIR=/var/bigbluebutton/published/
RECORDING_UNPUBLISH_DIR=/var/bigbluebutton/unpublished
RECORDING_WORK_DIR=/var/bigbluebutton/recording/scalelite
PROTECTED_RECORDINGS_ENABLED=true
PROTECTED_RECORDINGS_TOKEN_TIMEOUT=30
PROTECTED_RECORDINGS_TIMEOUT=120

DEFAULT_CREATE_PARAMS=record=true,meta_bbb-origin=Scalelite
OVERRIDE_CREATE_PARAMS=allowStartStopRecording=false,welcome=Hello=all
CREATE_EXCLUDE_PARAMS=logo, bannerText
DEFAULT_JOIN_PARAMS=userdata-bbb_auto_join_audio=true
OVERRIDE_JOIN_PARAMS=
JOIN_EXCLUDE_PARAMS=guest
MAX_MEETING_DURATION=240

GET_MEETINGS_API_DISABLED=TRUE
GET_RECORDINGS_API_FILTERED=true
MULTITENANCY_ENABLED=true
FSAPI_PASSWORD="fs-api-pass#1"   # dial-in
WEB_CONCURRENCY=4
LRS_ENDPOINT=https://lrs.example.org
MY_OWN_SETTING=1
"#;

    fn settings_of(toml: &str) -> Settings {
        toml::from_str::<Settings>(toml).unwrap_or_else(|err| panic!("{err}\n{toml}"))
    }

    fn reason<'a>(translation: &'a Translation, key: &str) -> Option<&'a str> {
        translation
            .unmapped
            .iter()
            .find(|(var, _)| var == key)
            .map(|(_, reason)| reason.as_str())
    }

    fn rule(action: &str, param: &str, value: &str) -> ParamRule {
        let (param, value) = (param.to_owned(), value.to_owned());
        match action {
            "default" => ParamRule::Default { param, value },
            "override" => ParamRule::Override { param, value },
            _ => ParamRule::Block { param },
        }
    }

    #[test]
    fn a_full_scalelite_env_becomes_settings_switchboard_accepts() {
        let translation = translate(FULL, "/etc/default/scalelite");
        let s = settings_of(&translation.toml);
        assert_eq!(s.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(s.public_url.as_deref(), Some("https://lb.example.org"));
        assert_eq!(s.secret.as_deref(), Some("d8f6ac0e4c2b1f7a9e3d5c8b"));
        assert_eq!(s.secrets, vec!["oldsecret-1234567890"]);
        assert_eq!(
            s.checksum_algorithms,
            vec![ChecksumAlgorithm::Sha1, ChecksumAlgorithm::Sha256]
        );
        assert_eq!(s.backend_checksum, ChecksumAlgorithm::Sha256);
        assert_eq!(s.redis_url.as_deref(), Some("redis://redis:6379/0"));
        assert_eq!(s.database, None);
        assert_eq!(
            (s.backend_timeout_ms, s.health.timeout_ms),
            (10_500, 10_500)
        );
        assert_eq!((s.health.online_after, s.health.offline_after), (2, 4));
        assert_eq!(s.health.interval_secs, 30.0);
        assert_eq!((s.load.young_size, s.load.young_seconds), (20, 600.0));
        let recordings = &s.recordings;
        assert_eq!(
            recordings.dir.as_deref(),
            Some(Path::new("/var/bigbluebutton"))
        );
        assert_eq!(
            recordings.spool_dir.as_deref(),
            Some(Path::new("/var/bigbluebutton/spool"))
        );
        assert_eq!(
            (recordings.link_ttl_secs, recordings.cookie_ttl_secs),
            (1800, 7200)
        );
        assert!(recordings.import);
        assert_eq!(
            s.policy.create,
            vec![
                rule("default", "record", "true"),
                rule("default", "meta_bbb-origin", "Scalelite"),
                rule("override", "allowStartStopRecording", "false"),
                rule("override", "welcome", "Hello=all"),
                rule("block", "logo", ""),
                rule("block", "bannerText", ""),
                ParamRule::Max {
                    param: "duration".into(),
                    value: 240
                },
            ]
        );
        assert_eq!(
            s.policy.join,
            vec![
                rule("default", "userdata-bbb_auto_join_audio", "true"),
                rule("block", "guest", ""),
            ]
        );
        let meetings = &s.meetings;
        assert!(!meetings.get_meetings && meetings.get_recordings_filtered);
        assert!(meetings.tenant_metadata);
        assert_eq!(meetings.voice_bridge_length, 9);
        assert!(!meetings.keep_requested_voice_bridge);
        assert!(s.fsapi.enabled);
        assert_eq!(s.fsapi.password.as_deref(), Some("fs-api-pass#1"));
        assert_eq!(s.fsapi.max_duration_minutes, 240);
    }

    #[test]
    fn the_output_passes_the_settings_checks_and_names_its_sources() {
        let translation = translate(FULL, "/etc/default/scalelite");
        let toml = &translation.toml;
        assert!(
            toml.starts_with("# switchboard.toml generated by"),
            "{toml}"
        );
        assert!(toml.contains("/etc/default/scalelite"), "{toml}");
        assert!(
            toml.contains("# LOADBALANCER_SECRET\nsecret = \"d8f6ac0e4c2b1f7a9e3d5c8b\""),
            "{toml}"
        );
        assert!(
            toml.contains("# SERVER_UNHEALTHY_THRESHOLD\noffline_after = 4"),
            "{toml}"
        );
        assert!(toml.contains("switchboard tenants create"), "{toml}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("switchboard.toml");
        std::fs::write(&file, toml).unwrap();
        let env: HashMap<String, String> = HashMap::new();
        Settings::load(Some(&file), &env, &Overrides::default()).unwrap();
    }

    #[test]
    fn unmapped_variables_are_listed_in_file_order_without_secrets() {
        let translation = translate(FULL, "scalelite.env");
        let keys: Vec<&str> = translation
            .unmapped
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "SECRET_KEY_BASE",
                "LOADBALANCER_SECRETS",
                "DATABASE_URL",
                "SCALELITE_TAG",
                "SCALELITE_RECORDING_DIR",
                "NGINX_SSL",
                "RECORDING_WORK_DIR",
                "PROTECTED_RECORDINGS_ENABLED",
                "WEB_CONCURRENCY",
                "LRS_ENDPOINT",
                "MY_OWN_SETTING",
            ]
        );
        assert!(
            reason(&translation, "LOADBALANCER_SECRETS")
                .unwrap()
                .contains("number 3")
        );
        assert!(
            reason(&translation, "DATABASE_URL")
                .unwrap()
                .contains("new, empty database")
        );
        assert_eq!(
            reason(&translation, "MY_OWN_SETTING"),
            Some("not a Scalelite setting Switchboard knows")
        );
        assert_eq!(
            reason(&translation, "LRS_ENDPOINT"),
            Some("per-tenant LRS is not supported")
        );
        let all = format!("{:?}", translation.unmapped);
        for secret in [
            "d8f6ac0e",
            "oldsecret",
            "tiny9",
            "hunter2",
            "fs-api-pass",
            "8b1f0c7e",
        ] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
    }

    #[test]
    fn env_lines_take_quotes_comments_and_export() {
        let parse = |line: &str| parse_line(line).unwrap().map(|(k, v)| format!("{k}={v}"));
        assert_eq!(parse("  # comment"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("export A=1").as_deref(), Some("A=1"));
        assert_eq!(parse("A = 'x # y' # note").as_deref(), Some("A=x # y"));
        assert_eq!(
            parse(r#"A="say \"hi\"\n""#).as_deref(),
            Some("A=say \"hi\"\n")
        );
        assert_eq!(parse("A=b#c # note").as_deref(), Some("A=b#c"));
        assert_eq!(parse("A=").as_deref(), Some("A="));
        assert!(parse_line("A=\"open").is_err());
        assert!(parse_line("A='x' y").is_err());
        assert!(parse_line("just words").is_err());
        assert!(parse_line("1A=2").is_err());
        let translation = translate("A B\nURL_HOST=lb.example.org\r\n", "f");
        assert_eq!(translation.unmapped.len(), 1);
        assert_eq!(translation.unmapped[0].0, "line 1");
    }

    #[test]
    fn only_loadbalancer_secrets_gives_the_first_as_secret() {
        let text = "LOADBALANCER_SECRETS=first-secret-0001:second-secret-02:first-secret-0001\n";
        let s = settings_of(&translate(text, "f").toml);
        assert_eq!(s.secret.as_deref(), Some("first-secret-0001"));
        assert_eq!(s.secrets, vec!["second-secret-02"]);
    }

    #[test]
    fn an_empty_file_keeps_scalelite_voice_bridge_defaults_and_no_fsapi() {
        let translation = translate("", "empty.env");
        assert!(translation.unmapped.is_empty());
        let s = settings_of(&translation.toml);
        assert_eq!(s.meetings.voice_bridge_length, 9);
        assert!(!s.meetings.keep_requested_voice_bridge);
        assert!(!translation.toml.contains("[fsapi]"));
        assert_eq!(s.policy.create, vec![]);
        assert!(translation.toml.contains("Scalelite defaults to 9"));
    }

    #[test]
    fn bad_numbers_are_reported_with_their_shape_and_left_out() {
        let text = "LOAD_MIN_USER_COUNT=lots\nPOLL_INTERVAL=-3\nSERVER_HEALTHY_THRESHOLD=0\n\
                    VOICE_BRIDGE_LEN=12\nPORT=http\nMAX_MEETING_DURATION=2h\n";
        let translation = translate(text, "f");
        let s = settings_of(&translation.toml);
        assert_eq!(s.load.young_size, 10);
        assert_eq!(s.meetings.voice_bridge_length, 5, "out of range: left out");
        assert!(s.policy.create.is_empty());
        assert_eq!(translation.unmapped.len(), 6, "{:?}", translation.unmapped);
        assert_eq!(
            reason(&translation, "LOAD_MIN_USER_COUNT"),
            Some("`lots` is not a whole number of users")
        );
        assert!(
            reason(&translation, "POLL_INTERVAL")
                .unwrap()
                .contains("`-3`")
        );
        assert!(
            reason(&translation, "VOICE_BRIDGE_LEN")
                .unwrap()
                .contains("4 to 9")
        );
        assert!(
            reason(&translation, "MAX_MEETING_DURATION")
                .unwrap()
                .contains("`2h`")
        );
    }

    #[test]
    fn timeouts_use_scalelite_defaults_for_the_missing_one() {
        let s = settings_of(&translate("RESPONSE_TIMEOUT=20\n", "f").toml);
        assert_eq!(
            (s.backend_timeout_ms, s.health.timeout_ms),
            (25_000, 25_000)
        );
        let s = settings_of(&translate("CONNECT_TIMEOUT=0.25\n", "f").toml);
        assert_eq!(s.backend_timeout_ms, 10_250);
    }

    #[test]
    fn recording_folders_must_form_one_tree() {
        let text = "RECORDING_PUBLISH_DIR=/srv/play\nRECORDING_UNPUBLISH_DIR=/srv/hidden\n\
                    RECORDING_DISABLED=true\nRECORDING_IMPORT_UNPUBLISHED=true\n";
        let translation = translate(text, "f");
        let s = settings_of(&translation.toml);
        assert_eq!(s.recordings.dir, None);
        assert!(!s.recordings.import);
        assert!(
            reason(&translation, "RECORDING_PUBLISH_DIR")
                .unwrap()
                .contains("/published")
        );
        assert!(reason(&translation, "RECORDING_UNPUBLISH_DIR").is_some());
        assert!(reason(&translation, "RECORDING_IMPORT_UNPUBLISHED").is_some());
        let fine =
            "RECORDING_PUBLISH_DIR=/data/published\nRECORDING_UNPUBLISH_DIR=/data/unpublished/\n";
        let translation = translate(fine, "f");
        assert!(
            translation.unmapped.is_empty(),
            "{:?}",
            translation.unmapped
        );
        let s = settings_of(&translation.toml);
        assert_eq!(s.recordings.dir.as_deref(), Some(Path::new("/data")));
    }

    #[test]
    fn parameter_lists_report_bad_entries_and_keep_the_rest() {
        let text = "DEFAULT_JOIN_PARAMS=noequals,a=1,a=2,meetingID=x\nJOIN_EXCLUDE_PARAMS=b,,b\n";
        let translation = translate(text, "f");
        let s = settings_of(&translation.toml);
        assert_eq!(
            s.policy.join,
            vec![rule("default", "a", "2"), rule("block", "b", "")]
        );
        let why = reason(&translation, "DEFAULT_JOIN_PARAMS").unwrap();
        assert!(
            why.contains("`noequals` has no `=`") && why.contains("meetingID"),
            "{why}"
        );
    }

    #[test]
    fn fsapi_follows_max_meeting_duration_and_needs_a_password() {
        let text = "MAX_MEETING_DURATION=90\nFSAPI_PASSWORD=\n";
        let translation = translate(text, "f");
        let s = settings_of(&translation.toml);
        assert!(s.fsapi.enabled);
        assert_eq!(
            (s.fsapi.password.clone(), s.fsapi.max_duration_minutes),
            (None, 90)
        );
        assert!(
            reason(&translation, "FSAPI_PASSWORD")
                .unwrap()
                .contains("without a password")
        );
        let s = settings_of(&translate("FSAPI_MAX_DURATION=30\n", "f").toml);
        assert_eq!((s.fsapi.enabled, s.fsapi.max_duration_minutes), (true, 30));
        let s = settings_of(&translate("MAX_MEETING_DURATION=90\n", "f").toml);
        assert_eq!((s.fsapi.enabled, s.fsapi.max_duration_minutes), (true, 90));
    }

    #[test]
    fn weak_secrets_and_odd_checksums_are_reported_not_written() {
        let text = "LOADBALANCER_SECRET=q7zq7z\nLOADBALANCER_CHECKSUM_ALGORITHM=MD5:sha512\n\
                    USE_EXTERNAL_VOICE_BRIDGE=true\nBIND=unix:///tmp/puma.sock\nPORT=3000\n";
        let translation = translate(text, "f");
        let s = settings_of(&translation.toml);
        assert_eq!(s.secret, None);
        assert_eq!(s.checksum_algorithms, vec![ChecksumAlgorithm::Sha512]);
        assert_eq!(s.backend_checksum, ChecksumAlgorithm::Sha512);
        assert!(s.meetings.keep_requested_voice_bridge);
        assert_eq!(s.listen.to_string(), "127.0.0.1:8090");
        let keys: Vec<&str> = translation
            .unmapped
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "LOADBALANCER_SECRET",
                "LOADBALANCER_CHECKSUM_ALGORITHM",
                "BIND"
            ]
        );
        assert!(!format!("{:?}", translation.unmapped).contains("q7zq7z"));
    }

    #[test]
    fn the_command_line_takes_a_file_and_an_optional_out() {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "switchboard",
            "import-scalelite-env",
            "/etc/default/scalelite",
            "--out",
            "switchboard.toml",
        ])
        .unwrap();
        let Command::ImportScaleliteEnv { file, out } = cli.command else {
            panic!("{:?}", cli.command);
        };
        assert_eq!(file, Path::new("/etc/default/scalelite"));
        assert_eq!(out.as_deref(), Some(Path::new("switchboard.toml")));
        assert!(Cli::try_parse_from(["switchboard", "import-scalelite-env"]).is_err());
    }
}
