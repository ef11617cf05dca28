import sys

from facesr.cli import main

sys.exit(main())
