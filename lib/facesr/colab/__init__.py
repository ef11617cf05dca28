"""The runtime: set-up on Colab (Drive, spandrel, the GPU check) and the kit's side of Drive; harmless elsewhere.

- :mod:`~facesr.colab.runtime`: ``setup_runtime`` (the notebooks' first cell), ``resolve_settings`` (their
  settings cell), ``python -m facesr.colab`` (colab_setup.sh).
- :mod:`~facesr.colab.drive`: the kit's layout on Drive, the runs link into it, the one-time data unpack.
"""

from facesr.colab.runtime import kit_root, resolve_settings, setup_runtime

__all__ = ["kit_root", "resolve_settings", "setup_runtime"]
