#!/bin/sh
# Offline quickstart: zero-shot, BAR, VP w/ SPSA-GC and BlackVIP on a real black box, with the query bill.
# Options: --budget X (training length multiplier), --seeds 1 2 3, --jobs N, --data DIR, --output DIR,
# --query-budget IMAGES, --remote URL [--remote-model NAME] (the classifier served over HTTP).
set -eu
exec "${PYTHON:-python}" "$(cd "$(dirname "$0")" && pwd)/quickstart.py" "$@"
