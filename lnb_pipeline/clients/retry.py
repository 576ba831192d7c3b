"""Retry timing shared by both clients: full-jitter exponential backoff, as LNB's SDKs do."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    attempts: int = 4
    """Tries in all, the first included."""
    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based); a server's Retry-After wins when longer."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** (retry_number - 1)))
        jittered = self.rng.uniform(0, ceiling)
        return max(jittered, retry_after) if retry_after is not None else jittered
