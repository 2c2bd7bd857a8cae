"""Screenshots of every Console page, from the real pages of a real ``alethia up``.

Runs the Console's browser tests (``tests/console``) with ``ALETHIA_CONSOLE_SCREENSHOTS``
set, so each step saves the page it reached as a PNG (laptop size, 1366 px wide, full
page). Usage: ``make console-screenshots`` (writes ``docs/console/*.png``), or
``python scripts/console_screenshots.py [DIR]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "console"
    env = {**os.environ, "ALETHIA_CONSOLE_SCREENSHOTS": str(target.resolve())}
    # Every Console test, the slow cancel one too (its page is the live deploy's screenshot).
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "tests/console",
        "-q",
        "-x",
        "-p",
        "no:randomly",
        "-m",
        "slow or not slow",
    ]
    done = subprocess.run(argv, cwd=ROOT, env=env, check=False)
    if done.returncode == 0:
        print(f"screenshots in {target}: {', '.join(sorted(p.name for p in target.glob('*.png')))}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
