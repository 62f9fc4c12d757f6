"""One rank of a multi-process test: the ``aitrain fit`` runs listed in a JSON file, in order.

Started by ``torchrun`` (which sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT), exactly as a
user launches ``torchrun ... -m autotrain_pl fit --config ...``. Running several fits in one
process pays the imports (most of a rank's start-up time on a CPU) once; the process group made
by the first fit is reused by the next. Exits with the first failing run's exit code.
"""

import json
import sys

from autotrain_pl.cli import run_cli


def main(spec_path: str) -> int:
    for argv in json.loads(open(spec_path).read()):
        code = run_cli(argv)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
