//! Builds faro's map viewer (`web/`) and embeds it in the binary.
//!
//! When `web/node_modules` is missing or older than `web/package-lock.json`, this runs
//! `npm ci --prefix web`; then `node web/build.mjs` writes the page and its assets into
//! Cargo's `OUT_DIR/viewer`, and `OUT_DIR/viewer_assets.rs` lists them for `include_bytes!`.
//! Cargo reruns this only when `web/src`, `web/build.mjs` or the npm manifests change.
//!
//! Without node/npm (or with `FARO_SKIP_WEB_BUILD=1`) the list is empty and faro serves its
//! plain HTML landing page instead of the viewer; cargo prints a warning saying so. With
//! `FARO_REQUIRE_WEB` set (as `scripts/test.sh` does) a failed viewer build fails the build.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn Error>> {
    for watched in [
        "web/src",
        "web/build.mjs",
        "web/package.json",
        "web/package-lock.json",
    ] {
        println!("cargo:rerun-if-changed={watched}");
    }
    println!("cargo:rerun-if-env-changed=FARO_SKIP_WEB_BUILD");
    println!("cargo:rerun-if-env-changed=FARO_REQUIRE_WEB");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let web = manifest.join("web");
    let dist = out.join("viewer");

    let skip = std::env::var("FARO_SKIP_WEB_BUILD").is_ok_and(|v| !v.is_empty() && v != "0");
    let files = if skip {
        println!("cargo:warning=FARO_SKIP_WEB_BUILD is set: faro is built without its map viewer");
        Vec::new()
    } else {
        match build_viewer(&web, &dist) {
            Ok(()) => list_files(&dist)?,
            Err(e) if std::env::var_os("FARO_REQUIRE_WEB").is_some() => {
                return Err(format!(
                    "FARO_REQUIRE_WEB is set and the map viewer was not built: {e}"
                )
                .into());
            }
            Err(e) => {
                println!(
                    "cargo:warning=the map viewer was not built ({e}); faro serves its plain landing page. Install node and npm, then rebuild"
                );
                Vec::new()
            }
        }
    };

    let mut code = String::from(
        "/// The viewer's files: path under the viewer root, bytes.\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for file in &files {
        let rel = file
            .strip_prefix(&dist)?
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            file.display().to_string()
        )?;
    }
    code.push_str("];\n");
    fs::write(out.join("viewer_assets.rs"), code)?;
    Ok(())
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command.status().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed: {status}"))
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn build_viewer(web: &Path, dist: &Path) -> Result<(), String> {
    let installed = modified(&web.join("node_modules/.package-lock.json"));
    let locked = modified(&web.join("package-lock.json"));
    if installed.is_none() || installed < locked {
        // `npm ci` writes only to stdout; cargo shows it when the build fails.
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(web))?;
    }
    run(Command::new("node").arg(web.join("build.mjs")).arg(dist))
}

fn list_files(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
