#!/usr/bin/env bash
# Build the real Velociraptor (pinned version) that connhunt's fleet tests run against.
#
# The module is downloaded by version through the Go module proxy (`go mod download`), built outside the
# repository, and cached: a second run reuses the binary. The last line on stdout is the binary's path.
#
# Env:  CONNHUNT_VELOCIRAPTOR  where the binary lives (default ~/.cache/connhunt/velociraptor-$VERSION)
#       CONNHUNT_VR_VERSION    module version (default v0.77.2)
#       GO                     the go tool (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

VERSION="${CONNHUNT_VR_VERSION:-v0.77.2}"
CACHE_DIR="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/connhunt"
BIN="${CONNHUNT_VELOCIRAPTOR:-$CACHE_DIR/velociraptor-${VERSION#v}}"
BUILD_DIR="$CACHE_DIR/build-${VERSION#v}"
MODULE="www.velocidex.com/golang/velociraptor"

log() { printf '[build.sh] %s\n' "$*" >&2; }
die() { printf '[build.sh] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -x "$BIN" ]] && "$BIN" version >/dev/null 2>&1; then
    log "reusing cached binary $BIN"
    echo "$BIN"
    exit 0
fi

GO="${GO:-$(command -v go || true)}"
[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
[[ -x "$GO" ]] || die "Go toolchain not found (set GO=/path/to/go); needed to build Velociraptor $VERSION"
log "using $("$GO" version)"

# The module cache is read-only by default; -modcacherw lets us copy and later clean it.
# -mod=mod lets `go` add go.sum entries the release's go.sum lacks instead of refusing to build.
export GOFLAGS="-modcacherw -mod=mod -buildvcs=false"
export CGO_ENABLED=0
START=$(date +%s)

log "downloading $MODULE@$VERSION through the Go module proxy"
# Run outside any module (a scratch dir), so `go mod download` fetches by version only.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
MOD_DIR="$(cd "$SCRATCH" && "$GO" mod download -json "$MODULE@$VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -n "$MOD_DIR" && -d "$MOD_DIR" ]] || die "go mod download gave no module directory for $MODULE@$VERSION"

log "copying $MOD_DIR to $BUILD_DIR"
rm -rf "$BUILD_DIR"
mkdir -p "$CACHE_DIR"
cp -r "$MOD_DIR" "$BUILD_DIR"
chmod -R u+w "$BUILD_DIR"
cd "$BUILD_DIR"

# The React GUI is not built for tests; the asset step embeds gui/velociraptor/build, which must not be empty.
GUI_BUILD="gui/velociraptor/build"
mkdir -p "$GUI_BUILD"
if [[ -z "$(find "$GUI_BUILD" -type f ! -name .keep -print -quit)" ]]; then
    log "GUI not built: writing a placeholder index.html into $GUI_BUILD"
    printf '<!doctype html><title>Velociraptor (GUI not built)</title>\n' > "$GUI_BUILD/index.html"
fi

# No blanket `go mod download`: two requirements (go-magic, go-yara) are cgo-only, unused by this CGO_ENABLED=0
# build, and the module proxy refuses them; `go build` fetches exactly the modules the build imports.

log "building embedded assets (go run make.go -v BasicAssets)"
"$GO" run make.go -v BasicAssets

log "building velociraptor (server_vql extras disable_grpc_modules release)"
mkdir -p "$(dirname "$BIN")"
"$GO" build -tags "server_vql extras disable_grpc_modules release" -o "$BIN.tmp" ./bin/
mv "$BIN.tmp" "$BIN"
"$BIN" version >/dev/null || die "built binary $BIN does not run"

log "built $BIN in $(( $(date +%s) - START ))s"
echo "$BIN"
