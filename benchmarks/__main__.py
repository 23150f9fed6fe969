"""`python -m benchmarks` runs the whole benchmark (ci/bench.sh does this)."""

import sys

from benchmarks.run import main

if __name__ == "__main__":  # spawned helper processes import this module too
    sys.exit(main())
