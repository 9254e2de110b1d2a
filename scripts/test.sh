#!/usr/bin/env bash
# Install everything the test suite needs, then run it.
#
#   bash scripts/test.sh [pytest args...]
#
# System packages: a real Dovecot IMAP server (dovecot-imapd), mbsync (isync),
# openssl, Chromium and the others listed in NEEDED below, installed with
# apt-get when missing (as root, or via sudo).
# Python: the project with its [test] extra, installed editable.
# Then ruff (lint and format) and mypy (mailbot/, strict), then pytest; `-m "not slow"` is the quick loop.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'scripts/test.sh: error: %s\n' "$*" >&2; exit 1; }

CAN_ROOT=1
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
    CAN_ROOT=0
fi

# Debian packages the tests use, each with the command that shows it is installed:
# a real IMAP server, mbsync (benchmarks), openssl (test certificates), LibreOffice and its Python bridge (legacy .doc),
# LibreOffice Calc (the tracker's printout, converted to PDF), unar (rar/7z), GNU time (benchmarks), Chromium (the web pages' browser tests drive it with Playwright),
# Poppler, Tesseract with its Vietnamese data and the DejaVu fonts (the stamped copies: scans drawn, read back by OCR).
declare -A NEEDED=(
    [dovecot-imapd]=/usr/sbin/dovecot
    [isync]=mbsync
    [openssl]=openssl
    [libreoffice-writer-nogui]=soffice
    [python3-uno]=/usr/lib/python3/dist-packages/uno.py  # the .doc converter kept running (documents/uno_worker.py)
    [libreoffice-calc-nogui]=/usr/lib/libreoffice/program/libsclo.so
    [unar]=unar
    [time]=/usr/bin/time
    [chromium]=chromium
    [postgresql]=/usr/share/postgresql-common/pg_wrapper  # the server: tests start a throwaway cluster with initdb
    [poppler-utils]=pdftoppm
    [tesseract-ocr]=tesseract
    [tesseract-ocr-vie]=/usr/share/tesseract-ocr/5/tessdata/vie.traineddata
    [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf
)
# A package is present when its command is on PATH or its file exists (`command -v` alone misses data files).
present() { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ]; }
missing=()
for pkg in "${!NEEDED[@]}"; do
    present "${NEEDED[$pkg]}" || missing+=("$pkg")
done

# --- system packages --------------------------------------------------------
if [ ${#missing[@]} -gt 0 ]; then
    [ "$CAN_ROOT" = 1 ] || die \
        "these Debian packages are needed for the tests: ${missing[*]}; run this
    script as root, install sudo, or install them yourself with apt-get install"
    command -v apt-get >/dev/null 2>&1 || die \
        "apt-get not found: install ${missing[*]} with your package manager"
    log "installing ${missing[*]}"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    # The package may have started the system-wide Dovecot. Tests run private
    # instances (own ports, own base_dir), so it does not conflict, but it is
    # not needed either.
    if command -v service >/dev/null 2>&1; then
        "${SUDO[@]}" service dovecot stop >/dev/null 2>&1 || true
    fi
    for pkg in "${missing[@]}"; do
        present "${NEEDED[$pkg]}" || die "$pkg still missing after apt-get install"
    done
fi

# Dovecot's mail processes run as this user when the tests run as root
# (tests/servers/dovecot.py also creates it on demand). Non-root runs use
# Dovecot's rootless mode and do not need it.
if [ "$(id -u)" -eq 0 ] && ! getent passwd vmail >/dev/null 2>&1; then
    log "creating system user vmail"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin vmail
fi

# --- Python dependencies ----------------------------------------------------
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
if "$PYTHON" - <<'PY'
import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(marker) else 1)
PY
then
    # Debian's own python3 (PEP 668). Fine to install into it in a throwaway
    # CI container running as root; elsewhere use a virtualenv.
    if [ "$(id -u)" -eq 0 ]; then
        export PIP_BREAK_SYSTEM_PACKAGES=1
    else
        die "$PYTHON is an externally managed (distribution) Python; create and
    activate a virtualenv first:  python3 -m venv .venv && . .venv/bin/activate"
    fi
fi
log "installing the project with its test extra"
"$PYTHON" -m pip install -q -e '.[test]'

# --- static checks ----------------------------------------------------------
# Before the tests, which take minutes: a lint or type error fails the command at once, with its reason.
log "ruff check, ruff format --check, mypy"
"$PYTHON" -m ruff check mailbot tests bench scripts \
    || die "ruff check found problems (listed above); 'ruff check --fix' repairs many"
"$PYTHON" -m ruff format --check mailbot tests bench scripts \
    || die "files not formatted as ruff formats them (listed above): run 'ruff format mailbot tests bench scripts'"
"$PYTHON" -m mypy || die "mypy found type errors in mailbot/ (listed above)"

# --- run --------------------------------------------------------------------
log "running pytest (SQLite, and tests/test_postgres.py on PostgreSQL)"
"$PYTHON" -m pytest -q "$@"
# The storage, pipeline, outbox and reminder tests again, each on a fresh database of a throwaway PostgreSQL
# cluster (tests/servers/postgres.py): what passes on SQLite must pass there too.
log "running the storage, pipeline, outbox and reminder tests on PostgreSQL"
MAILBOT_TEST_DATABASE=postgresql exec "$PYTHON" -m pytest -q tests/test_stages.py tests/test_outbox_queue.py \
    tests/test_notify.py tests/test_roster_staff.py "$@"
