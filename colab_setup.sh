#!/usr/bin/env bash
# Set up facesr-kit on a Colab runtime from a shell: clone or update the kit, then link its checkpoints/
# into Google Drive and unpack the data archive from Drive to local disk (python -m facesr.colab runs that
# logic, which lives in facesr.colab.drive; the notebooks' first cell calls the same code). Safe to run again:
# finished steps are skipped.
#
#   bash colab_setup.sh [--drive-root DIR] [--archive facesr/FFHQ.zip] [--drive-runs facesr/runs] [--data-dir DIR]
#
# Drive must be mounted first, from a notebook cell (a shell cannot mount it):
#   from google.colab import drive; drive.mount('/content/drive')
# Installs nothing: torch, torchvision, ipywidgets and the rest come with Colab and are never replaced.
set -euo pipefail

KIT_REPO_URL="https://github.com/facesr-kit/facesr-kit"  # same as facesr.colab.KIT_REPO_URL
PYTHON="${PYTHON:-python3}"

here="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" 2>/dev/null && pwd || true)"
if [ -n "${FACESR_KIT:-}" ]; then
  kit="$FACESR_KIT"
elif [ -n "$here" ] && [ -d "$here/lib/facesr" ]; then
  kit="$here"  # run from a checkout: use it as it is
else
  kit="/content/facesr-kit"
fi

if [ -d "$kit/lib/facesr" ]; then
  if [ -d "$kit/.git" ] && [ "$kit" != "$here" ]; then
    git -C "$kit" pull --ff-only -q || echo "note: could not update $kit (local changes?); using it as it is" >&2
  fi
elif [ -e "$kit" ] && [ -n "$(ls -A "$kit" 2>/dev/null)" ]; then
  echo "error: $kit exists but is not a facesr-kit checkout; move it away or set FACESR_KIT" >&2
  exit 2
else
  echo "cloning $KIT_REPO_URL to $kit"
  git clone -q "$KIT_REPO_URL" "$kit"
fi

PYTHONPATH="$kit/lib${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m facesr.colab --kit "$kit" "$@"
