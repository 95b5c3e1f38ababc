//! `sentinel-agent`: enrolls this device with a Sentinel server, then runs as its agent.
//! Everything is in the library; see `sentinel_agent::cli`.

fn main() -> std::process::ExitCode {
    sentinel_agent::cli::main()
}
