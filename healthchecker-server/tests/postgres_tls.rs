//! TLS to the database (`sslmode`, `sslrootcert` in `database_url`) against a real PostgreSQL
//! that takes TCP connections with TLS only (`hostssl`), its certificate made by the test for
//! localhost and 127.0.0.1. A throwaway cluster (tests/common/postgres.rs; skipped without
//! PostgreSQL unless HC_REQUIRE_POSTGRES=1).

mod common;

use common::postgres::Postgres;
use common::tls::Ca;
use healthchecker_server::store::{DatabaseUrl, Store, StoreOptions};

const KEY: &str = "tls-test";

/// Opens the store at `url` and writes `value` under [`KEY`]: the error text when either fails.
async fn write_through(url: &str, value: &str) -> Result<(), String> {
    let url = DatabaseUrl::parse(url).map_err(|error| error.to_string())?;
    let store = Store::open_postgres(&url, StoreOptions::default()).map_err(|e| e.to_string())?;
    store
        .set_server_state(KEY, Some(format!("\"{value}\"")))
        .await
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn tls_to_the_database_is_used_and_checked_as_sslmode_says() {
    let ca = Ca::new();
    let leaf = ca.leaf(std::time::Duration::from_secs(86_400));
    let Some(postgres) = Postgres::start_with_tls((&leaf.pem.0, &leaf.pem.1)) else {
        return;
    };
    let files = tempfile::tempdir().expect("temp dir");
    let root = files.path().join("root.crt");
    std::fs::write(&root, ca.pem()).expect("write the root");
    let other = files.path().join("other.crt");
    std::fs::write(&other, Ca::new().pem()).expect("write another root");
    let port = postgres.port();
    let at = |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/postgres{query}");
    let (root, other) = (root.display(), other.display());

    // Checked against the root: the certificate names 127.0.0.1
    let full = format!("?sslmode=verify-full&sslrootcert={root}");
    write_through(&at("127.0.0.1", &full), "verify-full")
        .await
        .expect("verify-full with the right root");
    // what went in is there, read over the Unix socket
    let socket = DatabaseUrl::parse(&postgres.url("postgres")).expect("the harness's URL");
    let store = Store::open_postgres(&socket, StoreOptions::default()).expect("opens");
    assert_eq!(
        store.server_state(KEY).expect("reads").as_deref(),
        Some("\"verify-full\"")
    );
    drop(store);

    // not 127.0.0.2: verify-full refuses, verify-ca (the chain only) takes it
    let error = write_through(&at("127.0.0.2", &full), "wrong name")
        .await
        .expect_err("the certificate does not name 127.0.0.2");
    assert!(error.contains("certificate"), "{error}");
    write_through(
        &at(
            "127.0.0.2",
            &format!("?sslmode=verify-ca&sslrootcert={root}"),
        ),
        "verify-ca",
    )
    .await
    .expect("verify-ca checks the chain, not the name");

    // another CA: refused, whatever the mode, once a root file is named
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let error = write_through(
            &at("127.0.0.1", &format!("?sslmode={mode}&sslrootcert={other}")),
            mode,
        )
        .await
        .expect_err("a certificate of another CA");
        assert!(error.contains("certificate"), "{mode}: {error}");
    }

    // require, and the default (prefer), without a root file: encrypted, not checked (as libpq)
    write_through(&at("127.0.0.1", "?sslmode=require"), "require")
        .await
        .expect("require");
    write_through(&at("127.0.0.1", ""), "prefer")
        .await
        .expect("prefer: TLS when the server offers it (this one takes nothing else)");
    // disable: the server takes no connection without TLS over TCP
    let error = write_through(&at("127.0.0.1", "?sslmode=disable"), "disable")
        .await
        .expect_err("hostssl only");
    assert!(error.contains("pg_hba.conf"), "{error}");

    // over the Unix socket PostgreSQL has no TLS: prefer goes on without, require fails
    let socket_dir = postgres.socket_dir().display().to_string();
    let on_socket =
        |query: &str| format!("postgres://postgres@/postgres?host={socket_dir}&port={port}{query}");
    write_through(&on_socket(""), "socket")
        .await
        .expect("prefer on a socket");
    write_through(&on_socket("&sslmode=require"), "socket")
        .await
        .expect_err("no TLS on a Unix socket");
}

#[test]
fn tls_settings_are_checked_when_the_url_is_read() {
    for (url, says) in [
        (
            "postgres://hc:pw@db/x?sslmode=sometimes",
            "sslmode \"sometimes\" is none of",
        ),
        (
            "postgres://hc:pw@db/x?sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
            "sslrootcert /nonexistent/root.crt cannot be read",
        ),
    ] {
        let error = DatabaseUrl::parse(url).expect_err(url).to_string();
        assert!(error.contains(says), "{url}: {error}");
        assert!(error.contains("database_url"), "{error}");
        assert!(!error.contains("pw"), "{error}");
    }
    let empty = tempfile::NamedTempFile::new().expect("a file");
    let error = DatabaseUrl::parse(&format!(
        "postgres://hc@db/x?sslmode=verify-ca&sslrootcert={}",
        empty.path().display()
    ))
    .expect_err("no certificate in it")
    .to_string();
    assert!(error.contains("holds no PEM certificate"), "{error}");
    // shown without the password, with the TLS settings
    let url = DatabaseUrl::parse("postgres://hc:pw@db/x?sslmode=verify-full&application_name=hc")
        .expect("valid");
    assert_eq!(
        url.to_string(),
        "postgres://hc@db:5432/x?sslmode=verify-full"
    );
}
