"""The runtime: set-up on Colab (Drive, spandrel, the GPU check) and the kit's side of Drive; harmless elsewhere.

- :mod:`~facesr.colab.runtime`: ``setup_runtime`` (the notebooks' first cell), ``python -m facesr.colab``
  (colab_setup.sh).
- :mod:`~facesr.colab.settings`: ``resolve_settings`` (the notebooks' settings cell): where data, runs and figures
  are, the mode, and the project's edition stored once on Drive.
- :mod:`~facesr.colab.drive`: the kit's layout on Drive, the runs link into it, the one-time data unpack.
- :mod:`~facesr.colab.trash`: ``empty_kit_trash``, the kit's own files out of Drive's Trash (Colab only).
"""

from facesr.colab.runtime import kit_root, setup_runtime
from facesr.colab.settings import resolve_settings
from facesr.colab.trash import empty_kit_trash

__all__ = ["empty_kit_trash", "kit_root", "resolve_settings", "setup_runtime"]
