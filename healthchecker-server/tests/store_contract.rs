//! The store's contract on both backends: the same test functions run against SQLite (a file in a
//! temporary folder) and PostgreSQL (a throwaway cluster, tests/common/postgres.rs; skipped with a
//! message where PostgreSQL is not installed, unless HC_REQUIRE_POSTGRES=1).

mod common;

use std::time::Duration;

use common::postgres::Postgres;

/// The harness itself: a cluster starts, answers over its Unix socket only, and is stopped and
/// removed when dropped.
#[tokio::test]
async fn postgres_harness_starts_answers_and_cleans_up() {
    let Some(postgres) = Postgres::start() else {
        return;
    };
    let socket_dir = postgres.socket_dir().to_owned();
    let (client, connection) =
        tokio_postgres::connect(&postgres.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect over the socket");
    let connection = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT current_setting('listen_addresses'), current_setting('fsync')",
            &[],
        )
        .await
        .expect("query");
    assert_eq!(row.get::<_, String>(0), "", "no TCP");
    assert_eq!(row.get::<_, String>(1), "off");
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the connection ends")
        .expect("join")
        .expect("a clean end");
    drop(postgres);
    assert!(!socket_dir.exists(), "{} is removed", socket_dir.display());
}
