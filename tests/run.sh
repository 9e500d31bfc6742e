#!/usr/bin/env bash
# The one test command (the README's, and what .ci/run calls). On a fresh machine it installs everything the
# tests need -- a virtualenv with connhunt and its test extras, the system tools the live tests drive, and the
# real Velociraptor built from its Go module -- then lints and runs the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${CONNHUNT_TEST_VENV:-.venv-test}"
PYTHON="${PYTHON:-python3}"

log() { printf '[tests/run.sh] %s\n' "$*" >&2; }

# System tools the live tests use: ip (namespaces), curl and ssh (ordinary traffic beside the planted backdoor).
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
command -v ssh >/dev/null || missing+=(openssh-client)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        log "missing ${missing[*]}: the live tests that need them will skip"
    fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test]'

# The real Velociraptor server and client for the fleet tests (cached after the first build).
if [[ -x tests/velociraptor/build.sh ]] || [[ -f tests/velociraptor/build.sh ]]; then
    log "building or reusing Velociraptor"
    if ! bash tests/velociraptor/build.sh >/dev/null; then
        # Outside CI the Velociraptor tests skip with the reason; under CI=true they fail.
        log "Velociraptor build failed"
        [[ "${CI:-}" == "true" ]] && exit 1
    fi
fi

log "ruff"
"$VENV/bin/ruff" check .
log "pytest"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
