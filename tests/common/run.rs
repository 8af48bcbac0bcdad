//! Running the `faro` binary as a user would, for the tests that drive the command line.

use std::process::{Command, Output};

/// `faro ARGS` on the database `db`, quiet logs, no token from the environment.
pub fn faro(args: &[&str], db: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faro"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .env_remove("FARO_TOKEN")
        .output()
        .expect("run faro")
}

/// The standard output of a run that must have succeeded (both streams in the failure).
pub fn ok(o: &Output) -> String {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "{stdout}{stderr}");
    stdout
}
