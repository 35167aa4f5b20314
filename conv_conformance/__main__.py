import sys

from conv_conformance.cli import main

sys.exit(main())
