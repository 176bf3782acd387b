//! The subcommands for whoever installs and runs the server: `check-config`, `completions` and
//! `man`. None of them talks to a server or touches the data folder.
//!
//! * `check-config` resolves the configuration exactly as a start would (the same options, the
//!   same sources), and prints every option in effect with where it came from, secrets masked,
//!   each `[[channel]]` by its kind and target (never its secrets), and each `[[monitor]]` by its
//!   kind, what it checks and how often; an invalid configuration is the same error a start would
//!   give (an `icmp://` monitor on a machine without ICMP sockets is only refused at start).
//! * `completions SHELL` prints a completion script (clap_complete) and `man` the manual page
//!   (clap_mangen), both drawn from the command line's own definition, so they cannot drift from
//!   `--help`. The `.deb` ships both (see `packaging/`).

use std::io::Write;

use clap::{CommandFactory as _, Subcommand};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::config::{ConfigError, ServeArgs, Setting};
use crate::{Config, VERSION};

/// The program's name, as completions and the man page call it.
const BIN_NAME: &str = "healthchecker-server";

/// Subcommands for installing and running the server.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Check the configuration a start with these options would use: print every option in
    /// effect and where it came from (flag, environment, config file, default), secrets masked;
    /// exit with status 2 when it is invalid, as the start would.
    CheckConfig {
        /// The options, as the server takes them.
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
    /// Print a completion script for SHELL, e.g. `healthchecker-server completions bash >
    /// /etc/bash_completion.d/healthchecker-server`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff), e.g. `healthchecker-server man | man -l -`.
    Man,
}

/// Why an admin subcommand failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The configuration is invalid (`check-config`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Writing the output failed (a closed pipe, a full disk).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl AdminError {
    /// The exit status for this error: 2 for an invalid configuration (as a start exits), 1 else.
    pub fn exit_status(&self) -> u8 {
        match self {
            AdminError::Config(_) => 2,
            AdminError::Output(_) => 1,
        }
    }
}

/// Runs `command`, writing its output to `out`.
///
/// # Errors
///
/// [`AdminError::Config`] when `check-config` finds the configuration invalid;
/// [`AdminError::Output`] when the output cannot be written.
pub fn run(command: AdminCommand, out: &mut dyn Write) -> Result<(), AdminError> {
    match command {
        AdminCommand::CheckConfig { serve } => {
            let (config, settings) = Config::load_with_sources(&serve)?;
            out.write_all(render_settings(&config, &settings).as_bytes())?;
        }
        AdminCommand::Completions { shell } => {
            // Rendered first: the generator panics on a failed write, this returns an error.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
            out.write_all(&script)?;
        }
        AdminCommand::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command().name(BIN_NAME)).render(&mut page)?;
            out.write_all(&page)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `check-config`'s report: valid TOML, one `option = value` line per option with its source as
/// a comment (unset options commented out), so it can also serve as a config file.
fn render_settings(config: &Config, settings: &[Setting]) -> String {
    let file = config
        .config_file
        .as_ref()
        .map_or_else(|| "none".to_owned(), |path| path.display().to_string());
    let mut text = format!(
        "# healthchecker-server {VERSION}: the configuration is valid.\n\
         # config file: {file}\n\
         # Each option as a start would use it, and where it comes from (secrets shown as ***).\n"
    );
    let lines: Vec<(String, &str)> = settings
        .iter()
        .map(|setting| {
            let line = match &setting.value {
                Some(value) => format!("{} = {value}", setting.option),
                None => format!("# {} is not set", setting.option),
            };
            (line, setting.source.as_str())
        })
        .collect();
    let width = lines.iter().map(|(line, _)| line.len()).max().unwrap_or(0);
    for (line, source) in lines {
        text.push_str(&format!("{line:<width$}  # {source}\n"));
    }
    // Channels as comments: their settings hold secrets, and `target` shows none of them.
    for channel in &config.channels {
        let events: Vec<&str> = channel.events.iter().map(|event| event.as_str()).collect();
        text.push_str(&format!(
            "# [[channel]] {:?}: {} to {}; events: {}; timeout {} s  # config file {file}\n",
            channel.name,
            channel.kind.name(),
            channel.target(),
            events.join(", "),
            channel.timeout.as_secs(),
        ));
    }
    for declared in &config.monitors {
        let spec = &declared.spec;
        text.push_str(&format!(
            "# [[monitor]] {:?}: {} {} every {} s (timeout {} s)  # config file {file}\n",
            declared.name.as_str(),
            spec.kind(),
            spec.check_url(),
            spec.interval.as_secs(),
            spec.timeout.as_secs(),
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_aligns_sources_and_comments_out_unset_options() {
        let settings = [
            Setting {
                option: "port",
                value: Some("8080".into()),
                source: "flag --port".into(),
            },
            Setting {
                option: "mail_from",
                value: None,
                source: "the default".into(),
            },
        ];
        let text = render_settings(&Config::default(), &settings);
        let expected = format!(
            "# healthchecker-server {VERSION}: the configuration is valid.\n\
             # config file: none\n\
             # Each option as a start would use it, and where it comes from (secrets shown as ***).\n\
             port = 8080             # flag --port\n\
             # mail_from is not set  # the default\n"
        );
        assert_eq!(text, expected);
    }
}
