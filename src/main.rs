//! The `tollgate` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    tollgate::Cli::parse().run()
}
