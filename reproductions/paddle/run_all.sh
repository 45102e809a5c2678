#!/bin/sh
# Runs every reproduction with $PYTHON (default python3, which must have paddlepaddle) and prints what each shows.
cd "$(dirname "$0")"
for f in *.py; do
  case "$f" in common.py|pylayer_common.py) continue;; esac
  echo "## $f"
  "${PYTHON:-python3}" "$f" 2>&1 | grep -v "ccache\|warnings.warn"
done
