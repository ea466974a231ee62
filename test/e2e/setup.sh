#!/usr/bin/env bash
# Installs what the end-to-end tests need: Debian's chromium (driven by playwright-core) and a real
# VS Code in the browser, code-server 4.100.3 (the last release on Node 20), under .e2e/.
# Idempotent: a second run only checks. Follows the recipe in ../shared/design/ARCHITECTURE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
E2E="$PWD/.e2e"
mkdir -p "$E2E"

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v rg >/dev/null || need_apt+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "e2e setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

CS="$E2E/node_modules/code-server"
if [ ! -f "$E2E/.code-server-ready" ]; then
  echo "e2e setup: installing code-server 4.100.3 into .e2e/"
  ( cd "$E2E"
    [ -f package.json ] || echo '{"name":"darkslim-e2e","private":true}' > package.json
    npm install --no-audit --no-fund --ignore-scripts code-server@4.100.3 >/dev/null 2>&1 )
  ( cd "$CS/lib/vscode"
    npm install --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null 2>&1
    mkdir -p node_modules/@vscode/ripgrep/bin
    cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
    npm_config_yes=true npm rebuild kerberos @parcel/watcher @vscode/deviceid @vscode/spdlog native-watchdog node-pty >/dev/null 2>&1
    ( cd extensions && npm install --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null 2>&1 )
    [ -e node_modules.asar ] || ln -s node_modules node_modules.asar )
  # argon2 is hoisted beside code-server, so it is rebuilt at the top of .e2e/
  ( cd "$E2E" && npm_config_yes=true npm rebuild argon2 >/dev/null 2>&1 )
  [ -f "$E2E/node_modules/argon2/lib/binding/napi-v3/argon2.node" ] || { echo "e2e setup: argon2 did not build" >&2; exit 1; }
  touch "$E2E/.code-server-ready"
fi
echo "e2e setup: ready (code-server at $CS, chromium at $(command -v chromium))"
