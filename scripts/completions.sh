#!/usr/bin/env bash
# Regenerate the committed shell completion scripts in completions/ from the app.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m escli.cli.completion_scripts completions
