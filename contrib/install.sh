#!/bin/sh
# Install or remove smartsync the one documented way; `sudo make install` and `make uninstall` call this.
#
#   contrib/install.sh install      idempotent: a second run upgrades the program and keeps the config
#   contrib/install.sh uninstall    removes the program and the schedule; keeps config, journal and logs
#
# What `install` sets up (every document in this repository assumes exactly this):
#   smartsync system user and group (no login shell, home /var/lib/smartsync)
#   /opt/smartsync                  a virtual environment holding smartsync and its dependencies
#   $PREFIX/bin/smartsync           the command (a link into /opt/smartsync); PREFIX defaults to /usr/local
#   /etc/smartsync                  root:smartsync 0750
#     config.yaml                   root:smartsync 0640, copied from config.example.yaml when absent
#     environment                   root:smartsync 0640, SMARTSYNC_CLIENT_SECRET=... (created empty)
#   /var/log/smartsync              smartsync:smartsync 0750 (change journal and cron.log, both 0600)
#   /var/lib/smartsync              smartsync:smartsync 0750 (the export, if copied there; run state)
#   the schedule                    the systemd timer when systemd runs, else /etc/cron.d/smartsync
#   /etc/logrotate.d/smartsync      rotates cron.log
#
# Settings (environment variables, or make variables: `sudo make install MAILTO=it@school.example`):
#   DESTDIR             install into this staging root instead of / (packaging, tests): no user is
#                       created, nothing is chowned, no service manager is told; files name the final paths
#   PREFIX              where bin/smartsync goes (default /usr/local)
#   PYTHON              the Python 3.11+ that builds the venv (default python3)
#   SCHEDULER           auto (default), systemd, cron or none
#   MAILTO              who cron mails when a run fails (default root)
#   SITE_PACKAGES_FROM  offline staging only: a Python whose installed packages (smartsync included)
#                       the venv reuses instead of installing from the package index
set -eu

action=${1:-install}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
PYTHON=${PYTHON:-python3}
SCHEDULER=${SCHEDULER:-auto}
MAILTO=${MAILTO:-root}
SITE_PACKAGES_FROM=${SITE_PACKAGES_FROM:-}

OPT=/opt/smartsync
ETC=/etc/smartsync
LOGS=/var/log/smartsync
STATE=/var/lib/smartsync
ACCOUNT=smartsync
SOURCE=$(cd "$(dirname "$0")/.." && pwd)

say() { printf 'smartsync install: %s\n' "$*"; }
fail() { printf 'smartsync install: error: %s\n' "$*" >&2; exit 1; }
at() { printf '%s%s' "$DESTDIR" "$1"; }

if [ -n "$DESTDIR" ]; then
    owning=no
elif [ "$(id -u)" -eq 0 ]; then
    owning=yes
else
    fail "run it as root (sudo make $action), or give DESTDIR=/a/staging/root"
fi

own() {  # own OWNER:GROUP PATH...
    if [ "$owning" = yes ]; then
        spec=$1
        shift
        chown "$spec" "$@"
    fi
}

scheduler() {
    case $SCHEDULER in
        auto) if [ -d /run/systemd/system ]; then echo systemd; else echo cron; fi ;;
        systemd | cron | none) echo "$SCHEDULER" ;;
        *) fail "SCHEDULER=$SCHEDULER: use auto, systemd, cron or none" ;;
    esac
}

install_program() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
        || fail "$PYTHON is not Python 3.11 or newer; give PYTHON=/usr/bin/python3.11 (or newer)"
    venv=$(at "$OPT")
    if [ -n "$SITE_PACKAGES_FROM" ]; then
        [ -x "$venv/bin/python" ] || "$PYTHON" -m venv --without-pip "$venv"
        reused=$("$SITE_PACKAGES_FROM" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        purelib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        printf 'import site; site.addsitedir(%s)\n' "'$reused'" >"$purelib/smartsync-reused.pth"
        printf '#!%s\nimport sys\nfrom smartsync.cli import main\nsys.exit(main())\n' \
            "$venv/bin/python" >"$venv/bin/smartsync"
        chmod 0755 "$venv/bin/smartsync"
        say "venv $OPT reuses the packages of $SITE_PACKAGES_FROM (offline staging)"
    else
        "$PYTHON" -c 'import ensurepip' 2>/dev/null \
            || fail "$PYTHON cannot make a virtual environment; install python3-venv first (Debian, Ubuntu: sudo apt install python3-venv)"
        [ -x "$venv/bin/pip" ] || "$PYTHON" -m venv "$venv"
        say "installing smartsync and its dependencies into $OPT from the package index (PyPI)"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$SOURCE"
    fi
    bindir=$(at "$PREFIX/bin")
    mkdir -p "$bindir"
    # A relative link works in a staging root and after it is copied to /.
    link=$("$PYTHON" -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' \
        "$OPT/bin/smartsync" "$PREFIX/bin")
    ln -sfn "$link" "$bindir/smartsync"
}

install_files() {
    if [ "$owning" = yes ] && ! id "$ACCOUNT" >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$STATE" --no-create-home \
            --shell /usr/sbin/nologin --comment "smartsync roster sync" "$ACCOUNT"
        say "created the system user $ACCOUNT"
    fi
    install -d -m 0750 "$(at "$ETC")"
    own root:"$ACCOUNT" "$(at "$ETC")"
    if [ ! -e "$(at "$ETC/config.yaml")" ]; then
        install -m 0640 "$SOURCE/config.example.yaml" "$(at "$ETC/config.yaml")"
        own root:"$ACCOUNT" "$(at "$ETC/config.yaml")"
        say "wrote $ETC/config.yaml from config.example.yaml"
    else
        say "kept the existing $ETC/config.yaml"
    fi
    if [ ! -e "$(at "$ETC/environment")" ]; then
        umask 027
        cat >"$(at "$ETC/environment")" <<'EOF'
# Secrets for smartsync, read by the systemd service and by the cron job; NAME=value lines.
# SMARTSYNC_CLIENT_SECRET=the-secret-value
# SMTP_PASSWORD=the-mail-password
EOF
        umask 022
        chmod 0640 "$(at "$ETC/environment")"
        own root:"$ACCOUNT" "$(at "$ETC/environment")"
    fi
    for folder in "$LOGS" "$STATE"; do
        install -d -m 0750 "$(at "$folder")"
        own "$ACCOUNT:$ACCOUNT" "$(at "$folder")"
    done
    if [ ! -e "$(at "$LOGS/cron.log")" ]; then
        install -m 0600 /dev/null "$(at "$LOGS/cron.log")"
        own "$ACCOUNT:$ACCOUNT" "$(at "$LOGS/cron.log")"
    fi
    install -d -m 0755 "$(at /etc/logrotate.d)"
    install -m 0644 "$SOURCE/contrib/logrotate/smartsync" "$(at /etc/logrotate.d/smartsync)"
}

install_schedule() {
    case $(scheduler) in
        systemd)
            install -d -m 0755 "$(at /etc/systemd/system)"
            sed -e "s|/usr/local/bin/smartsync|$PREFIX/bin/smartsync|" "$SOURCE/contrib/systemd/smartsync.service" \
                >"$(at /etc/systemd/system/smartsync.service)"
            install -m 0644 "$SOURCE/contrib/systemd/smartsync.timer" "$(at /etc/systemd/system)/"
            chmod 0644 "$(at /etc/systemd/system/smartsync.service)"
            if [ -z "$DESTDIR" ]; then
                systemctl daemon-reload
                systemctl enable --now smartsync.timer
            fi
            say "the systemd timer smartsync.timer runs smartsync at 04:00, 08:00 and 12:00"
            ;;
        cron)
            install -d -m 0755 "$(at /etc/cron.d)"
            sed -e "s|^MAILTO=.*|MAILTO=$MAILTO|" -e "s|/usr/local/bin/smartsync|$PREFIX/bin/smartsync|" \
                "$SOURCE/crontab.example" >"$(at /etc/cron.d/smartsync)"
            chmod 0644 "$(at /etc/cron.d/smartsync)"
            say "/etc/cron.d/smartsync runs smartsync at 04:00, 08:00 and 12:00 and mails $MAILTO on failure"
            ;;
        none) say "no schedule installed (SCHEDULER=none)" ;;
    esac
}

next_steps() {
    cat <<EOF

Next steps:
  1. Register the Entra app (docs/setup.md), then edit $ETC/config.yaml and put the secret in
     $ETC/environment as SMARTSYNC_CLIENT_SECRET=... (or use a certificate).
  2. Check it as the service user:
     sudo -u $ACCOUNT sh -c 'set -a; . $ETC/environment; $PREFIX/bin/smartsync check-credentials'
  3. Look at the first run before the schedule makes it:
     sudo -u $ACCOUNT sh -c 'set -a; . $ETC/environment; $PREFIX/bin/smartsync plan'
EOF
}

uninstall() {
    if [ -z "$DESTDIR" ] && [ -e /etc/systemd/system/smartsync.timer ] && command -v systemctl >/dev/null; then
        systemctl disable --now smartsync.timer || true
    fi
    rm -f "$(at /etc/systemd/system/smartsync.service)" "$(at /etc/systemd/system/smartsync.timer)"
    [ -n "$DESTDIR" ] || ! command -v systemctl >/dev/null || [ ! -d /run/systemd/system ] || systemctl daemon-reload
    rm -f "$(at /etc/cron.d/smartsync)" "$(at /etc/logrotate.d/smartsync)" "$(at "$PREFIX/bin/smartsync")"
    rm -rf "$(at "$OPT")"
    say "removed the program, the schedule and the log rotation."
    say "kept (they hold the config, the secret and the pupils' change history):"
    say "  $ETC  $LOGS  $STATE  and the user $ACCOUNT"
    say "remove them too with: sudo rm -r $ETC $LOGS $STATE && sudo userdel $ACCOUNT"
}

case $action in
    install)
        install_program
        install_files
        install_schedule
        next_steps
        ;;
    uninstall) uninstall ;;
    *) fail "unknown action $action: use install or uninstall" ;;
esac
