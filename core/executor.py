"""An executor of a job, as launchers start it: `python core/executor.py --config C --rank R --address HOST:PORT`."""

from __future__ import annotations

import sys
from pathlib import Path

# the package next to this folder, also where it is not installed
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fedscale_halor.launch.executor_main import main

if __name__ == "__main__":
    sys.exit(main())
