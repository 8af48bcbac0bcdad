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
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
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
