"""`python -m aoi_git.merge`: the task merge driver under the name that clones set up by
earlier releases name in `.git/config`. The driver itself is `aoi_git.store.task_merge`."""

import sys

from aoi_git.store.task_merge import main

if __name__ == "__main__":
    sys.exit(main())
