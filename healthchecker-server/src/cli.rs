//! The command line of `healthchecker-server`.
//!
//! Without a subcommand it runs the server with the options of [`ServeArgs`]; each option can
//! also come from `HEALTHCHECKER_<OPTION>` or the config file (see [`crate::config`]).

use clap::Parser;

use crate::config::ServeArgs;

/// Zero-config health checks for your LAN: apps register themselves, the server polls their
/// `/health` and emails you when one hangs.
///
/// Every option can also be set as an environment variable HEALTHCHECKER_OPTION_NAME (for example
/// HEALTHCHECKER_PORT=8080) or in the config file as `option_name = value`. A flag wins over the
/// environment, which wins over the file, which wins over the default.
#[derive(Debug, Parser)]
#[command(name = "healthchecker-server", version, about, long_about)]
pub struct Cli {
    /// Options of the server.
    #[command(flatten)]
    pub serve: ServeArgs,
}
