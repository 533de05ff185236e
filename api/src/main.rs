//! The `switchboard` binary.

/// mimalloc: the request path allocates many small strings, and glibc's
/// malloc and free were among the top costs of a join in a callgrind profile.
/// Built with the `system-allocator` feature, the binary keeps the system's
/// malloc, which heap profilers (heaptrack, valgrind's massif) can follow.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's setting of how long freed memory is kept before it goes back
/// to the system (read once, when the allocator starts).
#[cfg(not(feature = "system-allocator"))]
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// `serve` and `worker` start once more as themselves (same process, same
/// arguments) with freed memory given back to the system at once
/// (`MIMALLOC_PURGE_DELAY=0`) unless the environment says otherwise.
///
/// mimalloc 3 keeps freed memory for a second by default; with 10,000
/// meetings every health poll frees tens of MB, so the resident set peaked
/// 12-17 MB higher (issue 22, same build and run: 117.7 -> 104.3 MB on
/// PostgreSQL, 176.8 -> 160.1 MB on SQLite, no loss of throughput). The
/// allocator reads its settings before `main` and the workspace forbids
/// `unsafe` (its option call), so the setting is passed the way an operator
/// would pass it. If the program cannot be started again, it goes on as it is.
#[cfg(not(feature = "system-allocator"))]
fn with_freed_memory_returned_at_once() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let program = args.next();
    let args: Vec<std::ffi::OsString> = args.collect();
    // Any argument spelled so counts (the subcommand follows global flags
    // that take values); a CLI call that only names one runs once more,
    // unchanged, at the cost of an exec.
    if !args.iter().any(|arg| arg == "serve" || arg == "worker") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut again = std::process::Command::new(exe);
    if let Some(program) = program {
        again.arg0(program);
    }
    // Returns only when the program could not be started again.
    let err = again.args(args).env(PURGE_DELAY, "0").exec();
    eprintln!("switchboard: going on without {PURGE_DELAY}=0: {err}");
}

fn main() -> anyhow::Result<()> {
    #[cfg(not(feature = "system-allocator"))]
    with_freed_memory_returned_at_once();
    switchboard_api::cli::main()
}
