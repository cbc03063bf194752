#!/usr/bin/env bash
# network-config-analyzer (NCA), the analyzer `benchmarks/bench_nca.py` compares kubefence with,
# installed from PyPI into a virtualenv of its own: it pins its dependencies (PyYAML, networkx,
# lxml, ...) exactly, so it must never go into the project's .venv. Idempotent: does nothing
# when VENV already runs that NCA version. Called by the benchmark; can be run by hand.
#
#   scripts/setup-nca.sh [VENV [VERSION]]
#
# VENV defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/kubefence/nca-venv, VERSION to 2.1.0 (the
# newest release; it runs on Python 3.9+, here on 3.11). PYTHON chooses the interpreter the
# virtualenv is made from (default python3). The packages NCA does not pin itself are pinned
# below as well, so that the environment is the one the published figures were measured in.
set -euo pipefail
venv=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/kubefence/nca-venv}
version=${2:-2.1.0}
python=${PYTHON:-python3}

if [ -x "$venv/bin/nca" ] && [ "$("$venv/bin/nca" --version 2>/dev/null)" = "NCA version $version" ]; then
  exit 0
fi

echo "setup-nca: installing network-config-analyzer==$version into $venv" >&2
"$python" -m venv "$venv"
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
# NCA 2.1.0 pins beautifulsoup4, ghapi, greenery, lxml, networkx and PyYAML; these are the
# versions pip chose for the rest on 2026-11-24.
cat >"$constraints" <<'EOF'
fastcore==2.2.39
packaging==26.3
soupsieve==4.1.3
EOF
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -c "$constraints" "network-config-analyzer==$version"
"$venv/bin/nca" --version >&2
