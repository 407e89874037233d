#!/bin/sh
# AgentHQ installer: downloads a release for Linux x86_64/aarch64, verifies its SHA-256 and
# installs the static `agenthq` binary; with --systemd also sets up a hardened service.
#
#   curl -fsSL https://raw.githubusercontent.com/agenthq/agenthq/main/install.sh | sh
#   curl -fsSL https://raw.githubusercontent.com/agenthq/agenthq/main/install.sh | sudo sh -s -- --systemd
set -eu

RELEASE_BASE=${AGENTHQ_RELEASE_BASE:-https://github.com/agenthq/agenthq/releases}
VERSION=${AGENTHQ_VERSION:-}
PREFIX=${PREFIX:-/usr/local}
SYSTEMD=0

DATA_DIR=/var/lib/agenthq
UNIT_PATH=/etc/systemd/system/agenthq.service
ENV_DIR=/etc/agenthq

usage() {
    cat <<EOF
Usage: install.sh [--systemd] [--version VERSION] [--prefix DIR]

Installs the agenthq binary (Linux x86_64 or aarch64) into PREFIX/bin after verifying the
release archive's SHA-256 checksum.

Options:
  --systemd          Also (as root) create the 'agenthq' system user, $DATA_DIR (0700),
                     $ENV_DIR/env, and install, enable and start agenthq.service.
  --version VERSION  Release to install, e.g. 0.1.0 (default: the latest release).
  --prefix DIR       Install prefix (default: /usr/local; the binary goes to DIR/bin).
  -h, --help         Show this help.

Environment:
  AGENTHQ_VERSION       Same as --version.
  AGENTHQ_RELEASE_BASE  Releases URL (default: https://github.com/agenthq/agenthq/releases).
                        Archives are fetched from
                        BASE/download/vVERSION/agenthq-VERSION-ARCH-unknown-linux-musl.tar.gz
                        with the checksum in the same URL plus '.sha256'.
  PREFIX                Same as --prefix.
EOF
}

say() { printf 'agenthq-install: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

while [ $# -gt 0 ]; do
    case $1 in
        --systemd) SYSTEMD=1 ;;
        --version) [ $# -ge 2 ] || die "--version needs a value"; VERSION=$2; shift ;;
        --version=*) VERSION=${1#*=} ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; PREFIX=$2; shift ;;
        --prefix=*) PREFIX=${1#*=} ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

# --- platform ------------------------------------------------------------------------------
[ "$(uname -s)" = Linux ] || die "only Linux is supported (found $(uname -s))"
case $(uname -m) in
    x86_64 | amd64) ARCH=x86_64 ;;
    aarch64 | arm64) ARCH=aarch64 ;;
    *) die "unsupported architecture: $(uname -m) (need x86_64 or aarch64)" ;;
esac

case $PREFIX in
    *[[:space:]]*) die "PREFIX must not contain whitespace: $PREFIX" ;;
    /*) ;;
    *) die "PREFIX must be an absolute path: $PREFIX" ;;
esac
PREFIX=${PREFIX%/}
BIN_DIR=$PREFIX/bin
BIN_PATH=$BIN_DIR/agenthq

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
if [ "$SYSTEMD" -eq 1 ]; then
    [ "$IS_ROOT" -eq 1 ] || die "--systemd must be run as root"
    if ! have systemctl || [ ! -d /run/systemd/system ]; then
        die "--systemd needs a system running systemd"
    fi
    case $BIN_PATH in
        /home/* | /root/* | /run/user/*) die "--systemd needs PREFIX outside home directories (the unit sets ProtectHome)" ;;
    esac
fi

case $RELEASE_BASE in
    https://*) ;;
    *) say "warning: AGENTHQ_RELEASE_BASE is not https: $RELEASE_BASE" ;;
esac
RELEASE_BASE=${RELEASE_BASE%/}

# --- tools -----------------------------------------------------------------------------------
if have curl; then
    fetch() { curl -fsSL --retry 3 -o "$2" "$1"; }
    resolve_redirect() { curl -fsSLI -o /dev/null -w '%{url_effective}' "$1"; }
elif have wget; then
    fetch() { wget -q -O "$2" "$1"; }
    resolve_redirect() {
        wget -S --spider "$1" 2>&1 |
            sed -n 's/^ *Location: *\([^ ]*\).*$/\1/p' | tr -d '\r' | tail -n 1
    }
else
    die "need curl or wget"
fi

if have sha256sum; then
    sha256_of() { sha256sum "$1" | cut -d ' ' -f 1; }
elif have shasum; then
    sha256_of() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
elif have openssl; then
    sha256_of() { openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1; }
else
    die "need sha256sum, shasum or openssl to verify the download"
fi

for tool in tar gzip mktemp; do
    have "$tool" || die "need $tool"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agenthq-install.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- version ---------------------------------------------------------------------------------
if [ -z "$VERSION" ]; then
    url=$(resolve_redirect "$RELEASE_BASE/latest") || die "cannot resolve the latest release at $RELEASE_BASE/latest"
    VERSION=${url%/}
    VERSION=${VERSION##*/}
fi
VERSION=${VERSION#v}
case $VERSION in
    [0-9]*) ;;
    *) die "cannot determine the version to install (got '$VERSION'); set AGENTHQ_VERSION" ;;
esac
case $VERSION in
    *[!0-9A-Za-z.+-]*) die "invalid version: $VERSION" ;;
esac

# --- download and verify ---------------------------------------------------------------------
ARCHIVE=agenthq-$VERSION-$ARCH-unknown-linux-musl.tar.gz
URL=$RELEASE_BASE/download/v$VERSION/$ARCHIVE

say "downloading agenthq $VERSION for $ARCH"
fetch "$URL" "$TMP/$ARCHIVE" || die "download failed: $URL"
fetch "$URL.sha256" "$TMP/$ARCHIVE.sha256" || die "cannot download the checksum: $URL.sha256"

expected=$(sed -n '1s/^[[:space:]]*\([0-9A-Fa-f]\{64\}\)\([[:space:]].*\)\{0,1\}$/\1/p' "$TMP/$ARCHIVE.sha256" |
    tr 'A-F' 'a-f')
[ -n "$expected" ] || die "malformed checksum file: $URL.sha256"
actual=$(sha256_of "$TMP/$ARCHIVE" | tr 'A-F' 'a-f')
[ "$actual" = "$expected" ] || die "checksum mismatch for $ARCHIVE (expected $expected, got $actual)"
say "checksum OK ($actual)"

mkdir "$TMP/x"
tar -xzf "$TMP/$ARCHIVE" -C "$TMP/x" || die "cannot extract $ARCHIVE"
bin=$(find "$TMP/x" -type f -name agenthq | head -n 1)
[ -n "$bin" ] || die "no agenthq binary in $ARCHIVE"
chmod 0755 "$bin"
"$bin" version >/dev/null 2>&1 || die "the downloaded binary does not run on this system"

# --- install the binary ----------------------------------------------------------------------
SUDO=
if ! { mkdir -p "$BIN_DIR" 2>/dev/null && [ -w "$BIN_DIR" ]; }; then
    if [ "$IS_ROOT" -eq 1 ] || ! have sudo; then
        die "cannot write to $BIN_DIR (run as root or set PREFIX)"
    fi
    SUDO=sudo
    say "$BIN_DIR is not writable; using sudo"
    $SUDO mkdir -p "$BIN_DIR"
fi
# Copy next to the target, then rename: atomic, and safe while an old binary is running.
$SUDO cp "$bin" "$BIN_PATH.new"
$SUDO chmod 0755 "$BIN_PATH.new"
$SUDO mv -f "$BIN_PATH.new" "$BIN_PATH"
say "installed $("$BIN_PATH" version) to $BIN_PATH"

# --- systemd ---------------------------------------------------------------------------------
if [ "$SYSTEMD" -eq 1 ]; then
    if ! id agenthq >/dev/null 2>&1; then
        nologin=/bin/false
        for p in /usr/sbin/nologin /sbin/nologin; do
            if [ -x "$p" ]; then nologin=$p; break; fi
        done
        if have useradd; then
            useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
                --shell "$nologin" --comment "AgentHQ" agenthq
        elif have adduser; then
            adduser --system --group --home "$DATA_DIR" --no-create-home \
                --shell "$nologin" agenthq
        else
            die "need useradd or adduser to create the agenthq user"
        fi
        say "created system user agenthq"
    fi

    mkdir -p "$DATA_DIR"
    chown agenthq:agenthq "$DATA_DIR"
    chmod 0700 "$DATA_DIR"

    mkdir -p "$ENV_DIR"
    chmod 0755 "$ENV_DIR"
    if [ ! -e "$ENV_DIR/env" ]; then
        (umask 077 && cat >"$ENV_DIR/env" <<'EOF'
# AgentHQ settings, read by agenthq.service (KEY=value; restart the service after changes).
#AGENTHQ_LISTEN=127.0.0.1:8080
#AGENTHQ_PUBLIC_URL=https://agenthq.example.com
#AGENTHQ_BASE_DOMAIN=agenthq.example.com
#AGENTHQ_LOG=info
#AGENTHQ_LOG_FORMAT=json
#AGENTHQ_METRICS_TOKEN=
#AGENTHQ_MASTER_KEY=
#AGENTHQ_DATABASE_URL=postgres://agenthq@localhost/agenthq
EOF
        )
        say "wrote $ENV_DIR/env"
    fi

    # Keep in sync with packaging/agenthq.service (only ExecStart follows PREFIX).
    cat >"$UNIT_PATH.new" <<EOF
[Unit]
Description=AgentHQ server
Documentation=https://github.com/agenthq/agenthq
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
User=agenthq
Group=agenthq
ExecStart=$BIN_PATH serve
Environment=AGENTHQ_DATA_DIR=$DATA_DIR
EnvironmentFile=-$ENV_DIR/env

StateDirectory=agenthq
StateDirectoryMode=0700
UMask=0077

KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=45
Restart=on-failure
RestartSec=2s

LimitNOFILE=65536

NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=$DATA_DIR
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
EOF
    chmod 0644 "$UNIT_PATH.new"
    mv -f "$UNIT_PATH.new" "$UNIT_PATH"

    was_active=0
    systemctl is-active --quiet agenthq.service && was_active=1
    systemctl daemon-reload
    systemctl enable agenthq.service >/dev/null 2>&1 || die "systemctl enable agenthq.service failed"
    if [ "$was_active" -eq 1 ]; then
        systemctl restart agenthq.service || die "agenthq.service failed to restart; see: journalctl -u agenthq"
        say "restarted agenthq.service"
    else
        systemctl start agenthq.service || die "agenthq.service failed to start; see: journalctl -u agenthq"
        say "enabled and started agenthq.service"
    fi
    say "status: systemctl status agenthq ; logs: journalctl -u agenthq -f ; settings: $ENV_DIR/env"
fi
