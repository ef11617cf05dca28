"""facesr: the library behind the facesr-kit notebooks (blind x4 face super-resolution)."""

from facesr.errors import FacesrError

__version__ = "0.1.0"
__all__ = ["FacesrError", "__version__"]
