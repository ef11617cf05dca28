"""Weight files: read and written safely, other frameworks' formats, exports.

- :mod:`~facesr.weights.checkpoints`: reading any checkpoint without running code from it, the kit's atomic
  save, loading weights into a net, rebuilding a generator from a file.
- :mod:`~facesr.weights.formats`: what a file holds (kit, MMEditing 0.x, BasicSR, ESRGAN, safetensors
  metadata), the allow-list of globals, fitting a state dict to a net.
- :mod:`~facesr.weights.exports`: the EMA generator as safetensors or in BasicSR's layout.
"""

from facesr.weights.checkpoints import (
    checkpoint_file,
    load_checkpoint,
    load_weights,
    read_generator,
    run_checkpoint,
    save_checkpoint,
)
from facesr.weights.exports import export_generator

__all__ = [
    "checkpoint_file",
    "export_generator",
    "load_checkpoint",
    "load_weights",
    "read_generator",
    "run_checkpoint",
    "save_checkpoint",
]
