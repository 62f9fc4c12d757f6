#!/usr/bin/env bash
# Install into a virtualenv and run the offline quickstart (the README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${AUTOTRAIN_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e .
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
aitrain fit --config configs/quickstart.yaml "$@"
