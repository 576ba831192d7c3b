"""Wait until sandbox servers answer their health check (used by ``make run``)."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 60.0


def wait_for(urls: list[str], timeout: float = TIMEOUT_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{pending[0]}/_sandbox/health", timeout=2):
                pending.pop(0)
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return not pending


if __name__ == "__main__":
    if not wait_for(sys.argv[1:]):
        print(f"sandbox did not answer at {' '.join(sys.argv[1:])} within {TIMEOUT_SECONDS:.0f} s", file=sys.stderr)
        sys.exit(1)
