//! The `iamwatchd` command: parses arguments and calls into the library.

use std::process::ExitCode;

use clap::Parser;

/// Tells you, fast and exactly once, whenever anyone changes IAM in your AWS account, and
/// whenever someone tampers with the monitoring itself.
#[derive(Debug, Parser)]
#[command(name = "iamwatchd", version, about, long_about = None)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!(
        "iamwatchd {}: no subcommands are available in this build yet; see --help",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
