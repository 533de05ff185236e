//! Switchboard's HTTP side and binary: the BBB API facade under
//! `/bigbluebutton/api`, health endpoints, the in-memory routing view, the
//! demo mode and the CLI.

/// Prints a line on stdout; a closed pipe (`switchboard events list | head`)
/// ends the process quietly instead of panicking as `println!` would.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(err) = writeln!(std::io::stdout(), $($arg)*) {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

pub mod admin;
pub mod app;
pub mod bbb;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod http_server;
pub mod idle;
pub mod metrics;
pub mod polling;
pub mod recordings;
pub mod scalelite;
pub mod secrets;
pub mod server_callbacks;
pub mod tenant_stats;
