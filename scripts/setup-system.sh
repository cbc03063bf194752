#!/usr/bin/env bash
# System packages the enforcer and the lab need, and the nftables bindings made importable
# from the project's virtualenv. Called by `make test` (and `make system`); idempotent.
#   nftables          the nft tool and libnftables
#   python3-nftables  Debian's official libnftables Python bindings (pure Python over ctypes)
#   iproute2          `ip netns`, veth, routes for the lab
#   chromium          headless browser for the HTML report's browser test (pytest -m browser)
set -euo pipefail
venv=${1:?usage: setup-system.sh VENV}

need=()
for pkg in nftables python3-nftables iproute2 chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-system: need root to install: ${need[*]}" >&2
    exit 1
  fi
  echo "setup-system: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Debian installs the bindings for its own Python. They are pure Python, so link just that one
# package (not all of dist-packages) onto the venv's path.
src=$(dpkg -L python3-nftables | grep -m1 '/nftables/__init__.py$' | xargs dirname)
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$venv/debian-nftables"
ln -sfn "$src" "$venv/debian-nftables/nftables"
echo "$(cd "$venv/debian-nftables" && pwd)" > "$site/debian-nftables.pth"
"$venv/bin/python" -c 'import nftables; nftables.Nftables()' \
  || { echo "setup-system: the nftables bindings do not load" >&2; exit 1; }
