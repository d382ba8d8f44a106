import sys

from spikeforge.verify.command import main

sys.exit(main())
