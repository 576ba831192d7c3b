"""EAN13 check digits by python-stdnum, in this process or in a second one.

One Python process computes these on one core (the GIL), and on a million-row catalogue they are
the longest part of the stock computation. ``valid_check_digits`` therefore hands half of a long
list to ``python -m lnb_pipeline.rules.ean13``, which reads codes on stdin (one per line) and writes
the valid ones on stdout, and checks the other half itself meanwhile. This module imports only
python-stdnum, so the worker starts in a few tens of milliseconds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from contextlib import suppress

from stdnum import ean

SECOND_PROCESS_FROM = 50_000
"""Below this many codes a second process costs more than it saves."""


def _valid_here(codes: Sequence[str]) -> list[str]:
    """``calc_check_digit`` rather than ``is_valid``, which would redo the caller's format checks at twice the cost."""
    return [code for code in codes if ean.calc_check_digit(code[:-1]) == code[-1]]


def valid_check_digits(codes: Sequence[str]) -> list[str]:
    """The 13-digit ``codes`` whose last digit is the EAN13 check digit of the others, in order."""
    if len(codes) < SECOND_PROCESS_FROM:
        return _valid_here(codes)
    half = len(codes) // 2
    with subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as worker:
        assert worker.stdin is not None and worker.stdout is not None and worker.stderr is not None
        with suppress(BrokenPipeError), worker.stdin:
            worker.stdin.write("\n".join(codes[half:]))
        first = _valid_here(codes[:half])
        second, error = worker.stdout.read(), worker.stderr.read()
    if worker.returncode != 0:
        raise RuntimeError(f"the EAN13 check-digit process failed (exit {worker.returncode}): {error.strip()[-500:]}")
    return first + second.split()


if __name__ == "__main__":
    sys.stdout.write("\n".join(_valid_here(sys.stdin.read().split())))
