//! Where recordings are kept: a directory tree on disk, or a bucket (and key
//! prefix) of an S3-compatible object store, written as a URL.
//!
//! | written as | means |
//! |---|---|
//! | `/var/switchboard/recordings`, `file:///var/…` | the tree on disk ([`crate::Layout`]) |
//! | `s3://BUCKET` or `s3://BUCKET/PREFIX` | objects under `PREFIX/` in `BUCKET` |
//!
//! The S3 endpoint, region and credentials are not part of the URL (secrets
//! never travel in it): they come from [`S3Settings`].

use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// A recordings store, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoreLocation {
    /// A directory tree on disk.
    Dir(PathBuf),
    /// An S3 bucket, with the key prefix everything goes under (no leading
    /// or trailing `/`; empty for the bucket's root).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix.
        prefix: String,
    },
}

/// Why a store URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("recordings store `{url}` is not usable: {why} (write a directory, or s3://BUCKET/PREFIX)")]
pub struct LocationError {
    /// The URL as written (shortened).
    pub url: String,
    /// What is wrong.
    pub why: &'static str,
}

impl StoreLocation {
    /// Parses a store as operators write it (see the module docs).
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let text = text.trim();
        let refused = |why| LocationError {
            url: switchboard_domain::recording_ids::shorten(text),
            why,
        };
        if text.is_empty() {
            return Err(refused("it is empty"));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && !bucket.starts_with(['-', '.'])
                && !bucket.ends_with(['-', '.']);
            if !bucket_ok {
                return Err(refused(
                    "the bucket name must be 3 to 63 lowercase letters, digits, `-` or `.`",
                ));
            }
            let prefix = prefix.trim_matches('/');
            if prefix
                .split('/')
                .any(|part| part == "." || part == ".." || (part.is_empty() && !prefix.is_empty()))
                || prefix.contains(['\\', '\0', '?', '#'])
            {
                return Err(refused(
                    "the prefix has an empty, `.` or `..` segment or a `\\`, `?` or `#`",
                ));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(refused("a file:// URL needs an absolute path"));
            }
            return Ok(Self::Dir(PathBuf::from(path)));
        }
        if text.contains("://") {
            return Err(refused("only directories and s3:// are supported"));
        }
        Ok(Self::Dir(PathBuf::from(text)))
    }

    /// Whether this is an object store.
    pub fn is_object_store(&self) -> bool {
        matches!(self, Self::S3 { .. })
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// How Switchboard reaches S3: the endpoint of an S3-compatible server
/// (`SWITCHBOARD_S3_ENDPOINT`; AWS itself when unset), the region and the
/// credentials (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, read from the environment when not given here).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// `http(s)://host:port` of an S3-compatible server.
    pub endpoint: Option<String>,
    /// The region (`us-east-1` when neither this nor `AWS_REGION` is set).
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key (never logged).
    pub secret_access_key: Option<String>,
    /// Address buckets as `https://BUCKET.host/` instead of
    /// `https://host/BUCKET/` (AWS prefers it; most S3-compatible servers
    /// want the path style, the default).
    pub virtual_hosted: bool,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("virtual_hosted", &self.virtual_hosted)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_buckets_parse() {
        assert_eq!(
            StoreLocation::parse("/srv/rec").unwrap(),
            StoreLocation::Dir("/srv/rec".into())
        );
        assert_eq!(
            StoreLocation::parse("file:///srv/rec").unwrap(),
            StoreLocation::Dir("/srv/rec".into())
        );
        let s3 = StoreLocation::parse("s3://my-bucket/pool/a/").unwrap();
        assert_eq!(
            s3,
            StoreLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: "pool/a".into()
            }
        );
        assert_eq!(s3.to_string(), "s3://my-bucket/pool/a");
        assert_eq!(
            StoreLocation::parse("s3://bucket").unwrap().to_string(),
            "s3://bucket"
        );
    }

    #[test]
    fn bad_stores_are_refused_with_a_reason() {
        for bad in [
            "",
            "s3://",
            "s3://Upper",
            "s3://ab",
            "s3://bucket/../x",
            "s3://bucket/a//b",
            "gs://bucket",
            "file://relative",
        ] {
            let err = StoreLocation::parse(bad).unwrap_err();
            assert!(err.to_string().contains("is not usable"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let settings = S3Settings {
            secret_access_key: Some("hunter2".into()),
            ..S3Settings::default()
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
