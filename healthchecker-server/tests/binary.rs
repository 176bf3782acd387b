//! The server binary run as a user runs it: start-up, its own health, configuration from every
//! source, start-up errors, and clean shutdown on SIGINT and SIGTERM.

mod common;

use std::time::Duration;

use common::{ServerProcess, command, free_port, local_args, run_to_end, temp_dir, workspace_root};

async fn health(url: &str) -> (u16, String, serde_json::Value) {
    let response = reqwest::get(format!("{url}/health"))
        .await
        .expect("GET /health");
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    (
        status,
        content_type,
        response.json().await.expect("JSON body"),
    )
}

#[tokio::test]
async fn starts_serves_its_health_and_stops_on_sigterm() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let mut server = ServerProcess::start(cmd);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(
        !server.url.ends_with(":0"),
        "the real port is logged: {}",
        server.url
    );

    let (status, content_type, body) = health(&server.url).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/health+json");
    assert_eq!(body["status"], "pass");

    let exit = server.signal_and_wait("TERM");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    server.wait_for_line("stopped");
}

#[tokio::test]
async fn stops_on_sigint() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let mut server = ServerProcess::start(cmd);
    let exit = server.signal_and_wait("INT");
    assert!(exit.success(), "clean exit on SIGINT: {exit:?}");
}

#[tokio::test]
async fn port_comes_from_flag_over_env_over_file() {
    let dir = temp_dir();
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    std::fs::write(dir.path().join("config"), format!("port = {file_port}\n"))
        .expect("write config");

    let server = ServerProcess::start({
        let mut cmd = command(dir.path());
        cmd.args(local_args(dir.path()));
        cmd
    });
    assert!(
        server.url.ends_with(&format!(":{file_port}")),
        "file: {}",
        server.url
    );
    drop(server);

    let server = ServerProcess::start({
        let mut cmd = command(dir.path());
        cmd.args(local_args(dir.path()))
            .env("HEALTHCHECKER_PORT", env_port.to_string());
        cmd
    });
    assert!(
        server.url.ends_with(&format!(":{env_port}")),
        "env: {}",
        server.url
    );
    drop(server);

    let server = ServerProcess::start({
        let mut cmd = command(dir.path());
        cmd.args(local_args(dir.path()))
            .env("HEALTHCHECKER_PORT", env_port.to_string())
            .args(["--port", &flag_port.to_string()]);
        cmd
    });
    assert!(
        server.url.ends_with(&format!(":{flag_port}")),
        "flag: {}",
        server.url
    );
}

#[test]
fn unknown_key_stops_the_start_naming_key_and_file() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("config"), "prot = 8080\n").expect("write config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let (status, stderr) = run_to_end(cmd);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown option `prot` in config file"),
        "{stderr}"
    );
    // Issue 23: the nearest known option is suggested.
    assert!(stderr.contains("did you mean `port`?"), "{stderr}");
    assert!(stderr.contains("/config"), "{stderr}");
}

#[test]
fn out_of_range_value_stops_the_start_naming_key_value_and_source() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()))
        .env("HEALTHCHECKER_PORT", "99999");
    let (status, stderr) = run_to_end(cmd);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "invalid value `99999` for option `port` from environment variable HEALTHCHECKER_PORT"
        ),
        "{stderr}"
    );
}

/// Issue 23: an SMTP URL is checked completely at start, test mode or not: a bad `tls=` is a
/// start error naming the option, not a library message at the first mail.
#[test]
fn a_bad_smtp_url_stops_even_a_test_start() {
    for (url, says) in [
        (
            "smtp://127.0.0.1:2525?tls=sometimes",
            "`tls=sometimes` is not a TLS mode",
        ),
        (
            "smtp://127.0.0.1:2525?starttls=yes",
            "unknown query parameter `starttls`",
        ),
    ] {
        let dir = temp_dir();
        let mut cmd = command(dir.path());
        cmd.args(local_args(dir.path()))
            .args(["--test", "--smtp-url", url]);
        let (status, stderr) = run_to_end(cmd);
        assert_eq!(status.code(), Some(2), "{url}: {stderr}");
        assert!(
            stderr.contains("for option `smtp_url` from flag --smtp-url") && stderr.contains(says),
            "{url}: {stderr}"
        );
    }
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let dir = temp_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()))
        .args(["--port", &port.to_string()]);
    let (status, stderr) = run_to_end(cmd);
    // Issue 23: a start error like the others: exit 2, one line.
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "healthchecker-server: cannot listen on 127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn help_documents_every_option_with_its_default() {
    let (status, stdout) = {
        let output = command(&workspace_root())
            .arg("--help")
            // Shown as set, never with their values.
            .env("HEALTHCHECKER_TOKEN", "secret-token-in-help")
            .env(
                "HEALTHCHECKER_SMTP_URL",
                "smtp://u:secret-password@127.0.0.1:25",
            )
            .output()
            .expect("runs");
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert!(status.success());
    for option in healthchecker_server::config::OPTION_NAMES {
        // `legacy` is on by default: its flag turns it off.
        let flag = match *option {
            "legacy" => "--no-legacy".to_owned(),
            _ => format!("--{}", option.replace('_', "-")),
        };
        let start = stdout
            .find(&flag)
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{stdout}"));
        let entry = &stdout[start..];
        let end = entry[flag.len()..]
            .find("\n  -")
            .map_or(entry.len(), |end| end + flag.len());
        let entry = entry[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            entry.contains("[default: "),
            "{flag} has no default in --help:\n{entry}"
        );
        // Issue 23: every option names its environment variable, not only two.
        let variable = format!("[env: HEALTHCHECKER_{}", option.to_ascii_uppercase());
        assert!(
            entry.contains(&variable),
            "{flag} does not name {variable}] in --help:\n{entry}"
        );
    }
    assert!(
        !stdout.contains("secret-"),
        "a secret shown in --help:\n{stdout}"
    );
    let defaults = healthchecker_server::config::RawConfig::default();
    assert!(stdout.contains(&format!("[default: {}]", defaults.bind_addr)));
    assert!(stdout.contains(&format!("[default: {}]", defaults.port)));
    assert!(stdout.contains(&format!("[default: {}]", defaults.data_dir.display())));
}

#[test]
fn config_example_lists_every_option_at_its_default() {
    let path = workspace_root().join("config.example");
    let text = std::fs::read_to_string(&path).expect("config.example exists");
    for option in healthchecker_server::config::OPTION_NAMES {
        let listed = text.lines().any(|line| {
            let line = line.trim_start_matches('#').trim_start();
            line.starts_with(option) && line[option.len()..].trim_start().starts_with('=')
        });
        assert!(listed, "config.example does not list `{option}`");
    }
    // Read as a real config file, it gives exactly the defaults.
    let dir = temp_dir();
    std::fs::copy(&path, dir.path().join("config")).expect("copy");
    let mut cmd = command(dir.path());
    cmd.args(["--bind-addr", "127.0.0.1"]).arg("--no-mdns");
    let mut server = ServerProcess::start(cmd);
    server.wait_for_line("data: ./data;");
    let exit = server.signal_and_wait("TERM");
    assert!(exit.success());
    let parsed: toml::Table = toml::from_str(&text).expect("config.example is valid TOML");
    let defaults = toml::Table::try_from(healthchecker_server::config::RawConfig::default())
        .expect("serializes");
    for (key, value) in &parsed {
        assert_eq!(
            Some(value),
            defaults.get(key),
            "config.example: `{key}` is not the default"
        );
    }
}

#[tokio::test]
async fn shutdown_finishes_within_the_deadline_with_a_client_connected() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let mut server = ServerProcess::start(cmd);
    // A kept-alive idle connection must not hold the shutdown up.
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/health", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status();
    let exit = server
        .wait(Duration::from_secs(12))
        .expect("exits within the shutdown deadline");
    assert!(exit.success());
    drop(client);
}

#[test]
fn a_bad_channel_table_stops_the_start_naming_the_file_the_table_and_the_field() {
    let dir = temp_dir();
    let file = dir.path().join("config");
    std::fs::write(
        &file,
        "[[channel]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"ftp://user:hunter2@ntfy.lan/x\"\n",
    )
    .expect("config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path())).arg("--config").arg(&file);
    let (status, stderr) = run_to_end(cmd);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[[channel]] phone: `url`"), "{stderr}");
    assert!(stderr.contains("http:// or https://"), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // and an unknown setting in a table names it
    std::fs::write(&file, "[[channel]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/x\"\npriority = 5\n")
        .expect("config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path())).arg("--config").arg(&file);
    let (status, stderr) = run_to_end(cmd);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("priority"), "{stderr}");
}
