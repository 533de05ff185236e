//! BBB's own settings as bbb-web reads them: `bigbluebutton.properties`
//! overlaid by `/etc/bigbluebutton/bbb-web.properties`, in Java's
//! properties format. The agent takes the server's secret
//! (`securitySalt`) and URL (`bigbluebutton.web.serverURL`) from them.

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;

/// Where bbb-web's packaged defaults live.
pub const PACKAGED: &str = "/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties";
/// Where an operator's overrides live.
pub const OVERRIDES: &str = "/etc/bigbluebutton/bbb-web.properties";

/// The key of the server's secret.
pub const SECRET_KEY: &str = "securitySalt";
/// The key of the server's URL.
pub const URL_KEY: &str = "bigbluebutton.web.serverURL";
/// The key of the checksum algorithms the server accepts (BBB 2.6+).
pub const CHECKSUMS_KEY: &str = "supportedChecksumAlgorithms";

/// What the agent needs of BBB's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct BbbSettings {
    /// The server's API URL: `<serverURL>/bigbluebutton/api/`.
    pub api_url: String,
    /// Its shared secret.
    pub secret: String,
    /// The checksum algorithm to sign its API calls with.
    pub checksum: ChecksumAlgorithm,
    /// The files the values came from (the last one read wins).
    pub files: Vec<PathBuf>,
}

impl std::fmt::Debug for BbbSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BbbSettings")
            .field("api_url", &self.api_url)
            .field("secret", &"<redacted>")
            .field("checksum", &self.checksum)
            .field("files", &self.files)
            .finish()
    }
}

/// Reads one properties text: `key=value`, `key: value` or `key value`
/// lines, `#`/`!` comments, backslash continuations and escapes.
pub fn parse(text: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let (key, value) = split_pair(&logical);
        values.insert(unescape(&key), unescape(value.trim_start()));
        logical.clear();
    }
    if !logical.is_empty() {
        let (key, value) = split_pair(&logical);
        values.insert(unescape(&key), unescape(value.trim_start()));
    }
    values
}

/// Splits a logical line at the first unescaped `=`, `:` or blank.
fn split_pair(line: &str) -> (String, &str) {
    let mut escaped = false;
    for (at, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (line[..at].to_owned(), &line[at + 1..]),
            ' ' | '\t' => {
                let rest = line[at..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (line[..at].to_owned(), rest);
            }
            _ => {}
        }
    }
    (line.to_owned(), "")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// `${key}` references replaced by their values (one level, as BBB uses them).
fn resolve(value: &str, values: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let key = &rest[start + 2..start + end];
        out.push_str(values.get(key).map(String::as_str).unwrap_or_default());
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// Reads BBB's settings from `files`, later files overriding earlier ones.
/// Files given explicitly must all exist; with the defaults, a missing
/// override file is fine. Errors name the files and the key.
pub fn load(files: &[PathBuf], explicit: bool) -> anyhow::Result<BbbSettings> {
    let mut values = HashMap::new();
    let mut read = Vec::new();
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                values.extend(parse(&text));
                read.push(file.clone());
            }
            Err(err) if !explicit && err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot read BBB's settings file {}", file.display())
                });
            }
        }
    }
    let named = || {
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if read.is_empty() {
        bail!(
            "none of BBB's settings files exists ({}); pass --bbb-properties FILE",
            named()
        );
    }
    let get = |key: &str| -> anyhow::Result<String> {
        match values.get(key).map(|v| resolve(v, &values)) {
            Some(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
            _ => bail!("no `{key}` in BBB's settings ({})", named()),
        }
    };
    let secret = get(SECRET_KEY)?;
    let server_url = get(URL_KEY)?;
    if !(server_url.starts_with("http://") || server_url.starts_with("https://")) {
        bail!(
            "`{URL_KEY}` in BBB's settings ({}) is not an http(s) URL: `{server_url}`",
            named()
        );
    }
    let checksum = match values.get(CHECKSUMS_KEY) {
        Some(list) if list.split(',').any(|name| name.trim() == "sha256") => {
            ChecksumAlgorithm::Sha256
        }
        _ => ChecksumAlgorithm::Sha1,
    };
    Ok(BbbSettings {
        api_url: format!("{}/bigbluebutton/api/", server_url.trim_end_matches('/')),
        secret,
        checksum,
        files: read,
    })
}

/// The default files, packaged first.
pub fn default_files() -> Vec<PathBuf> {
    vec![Path::new(PACKAGED).into(), Path::new(OVERRIDES).into()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_properties_are_read_as_bbb_web_reads_them() {
        let values = parse(
            "# comment\n! also\nsecuritySalt=abc\\\n  def\nbigbluebutton.web.serverURL : https://bbb.example.org\nkey\\=x value with = sign\nunicode=\\u00e9\n",
        );
        assert_eq!(values["securitySalt"], "abcdef");
        assert_eq!(values[URL_KEY], "https://bbb.example.org");
        assert_eq!(values["key=x"], "value with = sign");
        assert_eq!(values["unicode"], "é");
    }

    #[test]
    fn overrides_win_and_missing_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let packaged = dir.path().join("bigbluebutton.properties");
        let overrides = dir.path().join("bbb-web.properties");
        std::fs::write(
            &packaged,
            "securitySalt=packaged\nbigbluebutton.web.serverURL=https://old.example\nsupportedChecksumAlgorithms=sha1,sha256\napiURL=${bigbluebutton.web.serverURL}/x\n",
        )
        .unwrap();
        std::fs::write(
            &overrides,
            "securitySalt=mine\nbigbluebutton.web.serverURL=https://bbb1.example.org/\n",
        )
        .unwrap();
        let settings = load(&[packaged.clone(), overrides.clone()], true).unwrap();
        assert_eq!(settings.secret, "mine");
        assert_eq!(
            settings.api_url,
            "https://bbb1.example.org/bigbluebutton/api/"
        );
        assert_eq!(settings.checksum, ChecksumAlgorithm::Sha256);
        assert!(
            !format!("{settings:?}").contains("mine"),
            "secret not shown"
        );

        std::fs::write(&overrides, "bigbluebutton.web.serverURL=https://b\n").unwrap();
        std::fs::write(&packaged, "x=y\n").unwrap();
        let err = load(&[packaged.clone(), overrides.clone()], true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("securitySalt"), "{err}");
        assert!(err.contains(&packaged.display().to_string()), "{err}");

        let missing = dir.path().join("nope.properties");
        let err = format!(
            "{:#}",
            load(std::slice::from_ref(&missing), true).unwrap_err()
        );
        assert!(err.contains(&missing.display().to_string()), "{err}");
    }
}
