//! The `switchboard` binary.

/// mimalloc: the request path allocates many small strings, and glibc's
/// malloc and free were among the top costs of a join in a callgrind profile.
/// Built with the `system-allocator` feature, the binary keeps the system's
/// malloc, which heap profilers (heaptrack, valgrind's massif) can follow.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    switchboard_api::cli::main()
}
