#!/usr/bin/env bash
# Browser tests of faro's map viewer (tests/browser/): installs what they need when it is
# missing (Debian's chromium, the npm packages of web/), builds the debug binary (which embeds
# the viewer), then runs node's test runner. Screenshots land in target/screenshots/;
# `--update-docs` also copies them to docs/viewer-desktop.png, docs/viewer-phone.png and
# docs/viewer-coverage.png.
set -euo pipefail
cd "$(dirname "$0")/.."

update_docs=0
for arg in "$@"; do
  case "$arg" in
    --update-docs) update_docs=1 ;;
    *) echo "usage: $0 [--update-docs]" >&2; exit 2 ;;
  esac
done

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "browser-tests: installing chromium (apt)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi

if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  echo "browser-tests: npm ci --prefix web"
  npm ci --prefix web --no-audit --no-fund
fi

cargo build --locked --bin faro
node --test --test-reporter=spec tests/browser/

if [ "$update_docs" -eq 1 ]; then
  cp target/screenshots/viewer-desktop.png target/screenshots/viewer-phone.png target/screenshots/viewer-coverage.png docs/
  echo "browser-tests: screenshots copied to docs/"
fi
