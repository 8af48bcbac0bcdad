//! `faro audit export`: the audit log as CSV, run as an admin would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::json;

fn faro(args: &[&str], db: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faro"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run faro")
}

#[test]
fn the_audit_log_exports_as_csv_with_its_filters() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("a.db").display());
    let file = dir.path().join("in.geojson");
    let features: Vec<_> = ["svc-x1", "svc-x2"]
        .iter()
        .map(|id| json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [12.2, 45.7]},
            "properties": {"name": format!("Servizio, \"{id}\""), "kind": "pas"}}))
        .collect();
    std::fs::write(
        &file,
        json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .unwrap();
    assert!(
        faro(&["import", "services", file.to_str().unwrap()], &db)
            .status
            .success()
    );

    let csv_path = dir.path().join("audit.csv");
    let out = faro(
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--out",
            csv_path.to_str().unwrap(),
        ],
        &db,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "seq",
            "at",
            "actor",
            "action",
            "collection",
            "id",
            "before",
            "after"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[5]).collect();
    assert_eq!(ids, ["svc-x2", "svc-x1"], "newest first");
    for r in &rows {
        assert_eq!((&r[3], &r[4]), ("create", "services"));
        assert!(r[6].is_empty());
        // The record after, as GeoJSON text that survives the CSV quoting.
        let after: serde_json::Value = serde_json::from_str(&r[7]).unwrap();
        assert_eq!(
            after["properties"]["name"],
            format!("Servizio, \"{}\"", &r[5])
        );
    }

    // To standard output, filtered.
    let out = faro(&["audit", "export", "--collection", "worksites"], &db);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "the header only"
    );
    let out = faro(&["audit", "export", "--id", "svc-x1"], &db);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    for (args, names) in [
        (vec!["audit", "export", "--format", "xlsx"], "--format"),
        (vec!["audit", "export", "--from", "yesterday"], "--from"),
        (
            vec!["audit", "export", "--collection", "roads"],
            "--collection",
        ),
    ] {
        let out = faro(&args, &db);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}
