//! Validates a MapLibre style with `gl-style-validate` from the npm package
//! `@maplibre/maplibre-gl-style-spec` (installed in `web/node_modules` by `npm ci --prefix
//! web`, which `scripts/test.sh` runs; it sets `FARO_REQUIRE_WEB` so the check cannot skip).

use std::path::PathBuf;

use serde_json::Value;

fn validator() -> Option<PathBuf> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/node_modules/.bin/gl-style-validate");
    path.exists().then_some(path)
}

/// Asserts that `style` validates (or skips visibly when the validator is not installed).
pub fn validate(style: &Value) {
    let Some(validator) = validator() else {
        crate::skip::skip(
            "style validation",
            "web/node_modules has no gl-style-validate (run `npm ci --prefix web`)",
            "FARO_REQUIRE_WEB",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("style.json");
    std::fs::write(&file, serde_json::to_vec_pretty(style).unwrap()).unwrap();
    let out = std::process::Command::new(validator)
        .arg(&file)
        .output()
        .expect("run gl-style-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "gl-style-validate: {text}"
    );
}
