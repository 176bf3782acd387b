//! The binary as a package and a service manager use it: `--version`, `completions`, `man`,
//! `check-config`, the data folder from systemd's `$STATE_DIRECTORY`, and SIGHUP (`systemctl
//! reload`) not stopping the server.

mod common;

use std::process::{Command, Output};

use common::{ServerProcess, command, local_args, temp_dir, workspace_root};

/// Runs the binary in `dir` with `args` to the end.
fn output(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = command(dir);
    cmd.args(args).env_remove("STATE_DIRECTORY");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn version_names_the_program_and_the_crate_version() {
    let out = output(&workspace_root(), &["--version"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("healthchecker-server {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_for_every_shell_know_the_subcommands_and_options() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = output(&workspace_root(), &["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in ["healthchecker-server", "check-config", "list", "data-dir"] {
            assert!(script.contains(word), "{shell} completion lacks {word:?}");
        }
    }
    // The bash script is valid bash.
    let dir = temp_dir();
    let file = dir.path().join("healthchecker-server.bash");
    std::fs::write(
        &file,
        stdout(&output(&workspace_root(), &["completions", "bash"], &[])),
    )
    .expect("write");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .status()
        .expect("bash runs");
    assert!(status.success(), "bash -n rejects the completion script");

    let out = output(&workspace_root(), &["completions", "tcsh"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
    assert!(stderr(&out).contains("bash"), "{}", stderr(&out));
}

#[test]
fn the_man_page_is_roff_and_documents_every_option_and_subcommand() {
    let out = output(&workspace_root(), &["man"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(
        page.contains(".TH healthchecker-server 1"),
        "no title: {page}"
    );
    for option in healthchecker_server::config::OPTION_NAMES {
        // roff escapes the dashes of --option-name; `legacy` is on by default, its flag turns it off.
        let name = if *option == "legacy" {
            "no_legacy"
        } else {
            option
        };
        let flag = format!("\\-\\-{}", name.replace('_', "\\-"));
        assert!(page.contains(&flag), "the man page lacks {flag}");
    }
    for subcommand in ["list", "log", "discover", "check\\-config", "completions"] {
        assert!(page.contains(subcommand), "the man page lacks {subcommand}");
    }
    // A real man reader renders it, when there is one.
    if Command::new("man").arg("--version").output().is_ok() {
        let dir = temp_dir();
        let file = dir.path().join("healthchecker-server.1");
        std::fs::write(&file, &page).expect("write");
        let rendered = Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man runs");
        assert!(rendered.status.success(), "{}", stderr(&rendered));
        assert!(String::from_utf8_lossy(&rendered.stdout).contains("data-dir"));
    }
}

#[test]
fn check_config_shows_each_value_and_its_source_with_secrets_masked() {
    let dir = temp_dir();
    std::fs::write(
        dir.path().join("hc.toml"),
        "port = 8080\ntoken = \"file-token-123456\"\nsmtp_url = \"smtps://me:pa55word@smtp.example.com:465\"\n\
         [[channel]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"https://hooks.example.com/x?key=qu3ry-key\"\n\
         secret = \"hmac-s3cr3t\"\nevents = [\"unhealthy\", \"recovered\"]\n\
         [[monitor]]\nname = \"nas\"\nurl = \"tcp://192.168.1.40:22\"\ninterval = 60\n",
    )
    .expect("write config");
    let out = output(
        dir.path(),
        &[
            "check-config",
            "--config",
            "hc.toml",
            "--bind-addr",
            "127.0.0.1",
        ],
        &[("HEALTHCHECKER_MAX_MONITORS", "50")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |option: &str| {
        text.lines()
            .find(|line| {
                line.strip_prefix("# ")
                    .unwrap_or(line)
                    .starts_with(&format!("{option} "))
            })
            .unwrap_or_else(|| panic!("no line for {option}:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let file = dir
        .path()
        .join("hc.toml")
        .canonicalize()
        .expect("canonical");
    assert!(
        text.contains(&format!("# config file: {}", file.display())),
        "{text}"
    );
    assert_eq!(
        line("bind_addr"),
        "bind_addr = \"127.0.0.1\" # flag --bind-addr"
    );
    assert_eq!(
        line("port"),
        format!("port = 8080 # config file {}", file.display())
    );
    assert_eq!(
        line("max_monitors"),
        "max_monitors = 50 # environment variable HEALTHCHECKER_MAX_MONITORS"
    );
    assert_eq!(line("log_retention"), "log_retention = 1000 # the default");
    assert_eq!(line("mail_from"), "# mail_from is not set # the default");
    assert!(line("token").starts_with("token = \"***\" # config file"));
    assert!(
        line("smtp_url").starts_with("smtp_url = \"smtps://me:***@smtp.example.com:465\""),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "# [[channel]] \"ops\": webhook to https://hooks.example.com/x; events: unhealthy, recovered; timeout 30 s  # config file {}",
            file.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "# [[monitor]] \"nas\": tcp tcp://192.168.1.40:22 every 60 s (timeout 5 s)  # config file {}",
            file.display()
        )),
        "{text}"
    );
    assert!(
        !text.contains("file-token")
            && !text.contains("pa55word")
            && !text.contains("qu3ry-key")
            && !text.contains("hmac-s3cr3t"),
        "a secret leaked:\n{text}"
    );
    // The report itself is a valid config file with the same values.
    let parsed: toml::Table = toml::from_str(&text).expect("the report is TOML");
    assert_eq!(parsed["port"].as_integer(), Some(8080));
    assert_eq!(parsed["max_monitors"].as_integer(), Some(50));
}

#[test]
fn check_config_fails_like_a_start_on_an_invalid_value_and_a_missing_file() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("config"), "retention_days = 0\n").expect("write config");
    let out = output(dir.path(), &["check-config"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "nothing printed as if valid");
    assert!(
        stderr(&out).contains("invalid value `0` for option `retention_days` from config file"),
        "{}",
        stderr(&out)
    );

    let out = output(dir.path(), &["check-config", "--config", "missing"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read config file missing: no such file"),
        "{}",
        stderr(&out)
    );

    let out = output(
        dir.path(),
        &["check-config", "--token", "short"],
        &[("HEALTHCHECKER_RETENTION_DAYS", "30")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`***` for option `token`") && !stderr(&out).contains("short"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_data_folder_defaults_to_systemds_state_directory() {
    let dir = temp_dir();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    let out = output(
        dir.path(),
        &["check-config"],
        &[("STATE_DIRECTORY", state.to_str().expect("UTF-8"))],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("data_dir = \"{}\"", state.display()))
            && stdout(&out).contains("STATE_DIRECTORY"),
        "{}",
        stdout(&out)
    );

    // A real start puts its database there.
    let mut cmd = command(dir.path());
    cmd.args(["--no-mdns", "--bind-addr", "127.0.0.1"])
        .env("STATE_DIRECTORY", &state);
    let mut server = ServerProcess::start(cmd);
    server.wait_for_line(&format!("data: {};", state.display()));
    assert!(state.join(healthchecker_server::store::FILE_NAME).exists());
    assert!(!dir.path().join("data").exists(), "not ./data");
    assert!(server.signal_and_wait("TERM").success());
}

#[tokio::test]
async fn sighup_does_not_stop_the_server() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let mut server = ServerProcess::start(cmd);
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    server.wait_for_line("SIGHUP: reading the configuration again");
    server.wait_for_line("reloaded: 0 monitor(s) declared");
    let health = reqwest::get(format!("{}/health", server.url))
        .await
        .expect("still serving after SIGHUP");
    assert_eq!(health.status(), 200);
    assert!(
        server.signal_and_wait("TERM").success(),
        "a clean stop after it"
    );
}
