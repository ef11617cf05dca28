"""``python -m facesr.colab``: the shell side of the runtime set-up (colab_setup.sh)."""

import sys

from facesr.colab.runtime import main

sys.exit(main())
