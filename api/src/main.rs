//! The `switchboard` binary.

fn main() -> anyhow::Result<()> {
    switchboard_api::cli::main()
}
