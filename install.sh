#!/usr/bin/env bash
# Installs Veil and its default detector models.
#
#   ./install.sh            development install into ./.venv (editable, with test tools)
#   ./install.sh --system   service install: /opt/veil venv, /etc/veil config, systemd unit, 'veil' user
#   ./install.sh --gpu      also install onnxruntime-gpu (CUDA libraries come from the registry)
#   ./install.sh --system --worker BROKER_URL
#                           also the worker unit veil-worker@.service and the root-only /etc/veil/broker.url
#                           (BROKER_URL "-": read from stdin, so that no password lands in the shell history)
#
# Running it twice is harmless: packages are re-resolved, verified models are kept.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=dev
gpu=0
broker=""
while [ $# -gt 0 ]; do
    case "$1" in
        --system) mode=system ;;
        --gpu) gpu=1 ;;
        --worker) shift; broker=${1:?"--worker needs the broker URL (or - to read it from stdin)"} ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
[ -z "$broker" ] || [ "$mode" = system ] || { echo "install.sh: --worker goes with --system" >&2; exit 2; }

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }

# Debian packages: venv support, libsystemd headers for systemd-python, ffmpeg for ffprobe checks,
# systemd for systemd-analyze (the unit is verified in a test) and the service itself.
apt_packages=(python3-venv python3-dev pkg-config libsystemd-dev gcc ffmpeg systemd)
# The development install adds what the tests drive: libfaketime (clock jumps), chromium (the drift report),
# libseccomp2 (the unit's system-call filter, through pyseccomp; systemd already depends on it).
test_apt_packages=(libfaketime chromium libseccomp2)
install_apt_packages() {
    local missing=()
    for p in "${apt_packages[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get to install them"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    say "installing system packages: ${missing[*]}"
    $sudo apt-get update -qq || die "apt-get update failed (no network?)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

if [ "$mode" = system ]; then
    venv=/opt/veil
else
    venv="$here/.venv"
fi

[ "$mode" = dev ] && apt_packages+=("${test_apt_packages[@]}")
install_apt_packages

if [ ! -x "$venv/bin/python" ]; then
    say "creating virtual environment $venv"
    python3 -m venv "$venv" || die "could not create $venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

say "installing Veil into $venv"
if [ "$mode" = system ]; then
    "${pip[@]}" install "$here[systemd,celery]" || die "pip install failed (no network?)"
else
    "${pip[@]}" install -e "$here[systemd,celery,test]" || die "pip install failed (no network?)"
fi
# TrackEval (IDF1/HOTA for veil eval-video) declares the desktop opencv-python as a dependency, which would
# replace the headless build: install it alone; what it really needs (numpy, scipy) is already there.
"${pip[@]}" install --no-deps "trackeval==1.3.0" "tabulate>=0.9" || die "pip install trackeval failed"
if [ "$gpu" -eq 1 ]; then
    say "installing onnxruntime-gpu"
    "${pip[@]}" uninstall -y onnxruntime >/dev/null 2>&1 || true
    "${pip[@]}" install "onnxruntime-gpu[cuda,cudnn]" || die "pip install onnxruntime-gpu failed"
fi

say "fetching default models"
"$venv/bin/python" "$here/tools/fetch_models.py" --dest "$venv/share/veil/models" \
    || die "model fetch failed; nothing was changed in the model directory"

if [ "$mode" = system ]; then
    if [ "$broker" = "-" ]; then
        IFS= read -r broker || true
        [ -n "$broker" ] || die "no broker URL on stdin"
    fi
    VEIL_BROKER_URL="$broker" "$here/tools/install_system.sh" "$venv" "$here"
fi

say "done. Try: $venv/bin/veil models"
