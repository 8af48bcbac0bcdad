//! Visible skips. A test that cannot run here (no PostgreSQL server, no GDAL) says so on the
//! terminal, past the test harness's output capture, and fails instead when the run demands
//! what it needs (`FARO_REQUIRE_POSTGRES`, `FARO_REQUIRE_GDAL`, set by `scripts/test.sh`).

use std::io::Write;

/// Reports `test` as skipped for `reason`, or panics if `required_by` is set in the
/// environment. Returns `false`, for `if !skip(...) { return; }` style use.
pub fn skip(test: &str, reason: &str, required_by: &str) -> bool {
    assert!(
        std::env::var_os(required_by).is_none(),
        "{test}: {reason}, but {required_by} is set: this run must not skip it"
    );
    // Straight to the file descriptor: the harness captures only the print macros.
    let line = format!("SKIPPED {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    false
}

/// Whether the PostgreSQL test server is there (`FARO_TEST_DATABASE_URL`); a visible skip
/// otherwise.
#[allow(dead_code)]
pub fn have_postgres(test: &str) -> bool {
    std::env::var("FARO_TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty())
        || skip(
            test,
            "no PostgreSQL server (run it through scripts/with-postgres.sh)",
            "FARO_REQUIRE_POSTGRES",
        )
}

/// Drops a test database on the PostgreSQL server at `admin_url`, from outside any async
/// context (a `Drop`): a thread with its own runtime.
#[allow(dead_code)]
pub fn drop_database(admin_url: &str, name: &str) {
    let (admin_url, name) = (admin_url.to_owned(), name.to_owned());
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if let Ok((client, conn)) =
                tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
            {
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        });
    })
    .join();
}
