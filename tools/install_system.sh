#!/usr/bin/env bash
# Service install, the part after the venv and its models: called by `./install.sh --system` as
#   tools/install_system.sh VENV REPO_DIR
# Creates the 'veil' user and the configured folders, installs /etc/veil/veil.toml (an existing one is
# kept; the new default is put beside it as veil.toml.dist), the unit and its ReadWritePaths drop-in, then
# runs `systemctl daemon-reload`. It does not start the service: `systemctl enable --now veil`.
#
# With VEIL_BROKER_URL set (./install.sh --system --worker URL): also the worker unit veil-worker@.service,
# the URL in /etc/veil/broker.url (root only, 0600; the units get a copy through LoadCredential=) and a
# drop-in that lets veil.service reach the broker. Set [dispatch] backend = "celery" in veil.toml to use it.
#
# DESTDIR=/some/root stages every file under that root instead (packaging, tests): no user is created,
# nothing is chowned and systemctl is not called.
set -euo pipefail

venv=${1:?usage: install_system.sh VENV REPO_DIR}
repo=${2:?usage: install_system.sh VENV REPO_DIR}
dest=${DESTDIR:-}
user=veil

die() { echo "install_system.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }

[ -x "$venv/bin/veil" ] || die "$venv/bin/veil not found: install the venv first"
if [ -z "$dest" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (or via sudo ./install.sh --system)"
fi

if [ -z "$dest" ] && ! id -u "$user" >/dev/null 2>&1; then
    say "creating system user $user"
    useradd --system --user-group --home-dir /var/lib/veil --no-create-home --shell /usr/sbin/nologin \
        --comment "Veil anonymization service" "$user" || die "useradd failed"
fi

etc="$dest/etc/veil"
config="$etc/veil.toml"
install -d -m 0755 "$etc"
if [ -e "$config" ]; then
    say "keeping $config; the new default is $config.dist"
    install -m 0644 "$repo/config/veil.toml" "$config.dist"
else
    say "installing $config"
    install -m 0640 "$repo/config/veil.toml" "$config"
    [ -z "$dest" ] && chgrp "$user" "$config"
fi
"$venv/bin/veil" config check "$config" || die "$config is invalid: fix it, then run this again"

# The folders the configuration names: created for the service user, and the only writable paths.
mapfile -t folders < <("$venv/bin/python" - "$config" <<'PY'
import sys
from pathlib import Path
from daemon.config.settings import load_settings

settings = load_settings(Path(sys.argv[1]))
for folder in settings.folders:
    for path in (folder.ingest, *folder.destinations()):
        print(path)
PY
) || die "could not read the folders from $config"
for folder in "${folders[@]}"; do
    if [ ! -d "$dest$folder" ]; then
        say "creating $folder"
        install -d -m 0750 "$dest$folder"
        [ -z "$dest" ] && chown "$user:$user" "$dest$folder"
    fi
done

unit_dir="$dest/etc/systemd/system"
install -d -m 0755 "$unit_dir/veil.service.d"
say "installing $unit_dir/veil.service"
sed "s#/opt/veil/#$venv/#g" "$repo/systemd/veil.service" > "$unit_dir/veil.service.tmp"
chmod 0644 "$unit_dir/veil.service.tmp"
mv "$unit_dir/veil.service.tmp" "$unit_dir/veil.service"
{
    echo "# Written by tools/install_system.sh from $config: the folders Veil may write."
    echo "[Service]"
    for folder in "${folders[@]}"; do
        echo "ReadWritePaths=$folder"
    done
} > "$unit_dir/veil.service.d/10-folders.conf"
chmod 0644 "$unit_dir/veil.service.d/10-folders.conf"

if [ -n "${VEIL_BROKER_URL:-}" ]; then
    say "installing $unit_dir/veil-worker@.service and $etc/broker.url (root only)"
    (umask 077 && printf '%s\n' "$VEIL_BROKER_URL" > "$etc/broker.url.tmp")
    chmod 0600 "$etc/broker.url.tmp"
    mv "$etc/broker.url.tmp" "$etc/broker.url"
    sed "s#/opt/veil/#$venv/#g" "$repo/systemd/veil-worker@.service" > "$unit_dir/veil-worker@.service.tmp"
    chmod 0644 "$unit_dir/veil-worker@.service.tmp"
    mv "$unit_dir/veil-worker@.service.tmp" "$unit_dir/veil-worker@.service"
    install -d -m 0755 "$unit_dir/veil-worker@.service.d"
    cp "$unit_dir/veil.service.d/10-folders.conf" "$unit_dir/veil-worker@.service.d/10-folders.conf"
    cat > "$unit_dir/veil.service.d/20-broker.conf" <<'CONF'
# Written by tools/install_system.sh --worker: veil serve enqueues on the broker ([dispatch] backend).
[Service]
PrivateNetwork=no
IPAddressDeny=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
LoadCredential=broker.url:/etc/veil/broker.url
CONF
    chmod 0644 "$unit_dir/veil.service.d/20-broker.conf"
fi

doc_dir="$dest$venv/share/doc/veil"
install -d -m 0755 "$doc_dir"
install -m 0644 "$repo/README.md" "$doc_dir/README.md"
install -d -m 0755 "$doc_dir/docs"
install -m 0644 "$repo"/docs/*.md "$repo"/docs/*.png "$doc_dir/docs/"

if [ -n "$dest" ]; then
    say "staged under $dest (no user, no systemctl)"
elif [ -d /run/systemd/system ]; then
    systemctl daemon-reload || die "systemctl daemon-reload failed"
    say "installed. Start with: systemctl enable --now veil; then: veil status, journalctl -u veil"
else
    say "systemd is not running here: the unit is installed but not loaded"
fi
