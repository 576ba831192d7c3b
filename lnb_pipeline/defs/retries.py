"""The retry policy of the steps that call Shopify or LNB, and the errors it must not retry."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import dagster as dg

from lnb_pipeline.clients.lenewblack import LnbAuthError
from lnb_pipeline.clients.shopify import ShopifyAuthError

API_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
"""A step whose calls still fail after the clients' own retries (an outage of minutes) runs again
about 15 s, then 30 s later."""
NOT_RETRIED = (ShopifyAuthError, LnbAuthError, ValueError)
"""Refused credentials and invalid settings: the same answer 15 and 30 s later, so the step fails at once."""

Compute = TypeVar("Compute", bound=Callable[..., Any])


def _final(error: Exception) -> dg.Failure:
    return dg.Failure(description=str(error), allow_retries=False)


def fail_fast_on_permanent_errors(compute: Compute) -> Compute:
    """Wrap an asset's function (under ``@dg.asset``) so that a ``NOT_RETRIED`` error skips ``API_RETRY``."""
    if inspect.isgeneratorfunction(compute):
        @functools.wraps(compute)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from compute(*args, **kwargs)
            except NOT_RETRIED as error:
                raise _final(error) from error

        return cast(Compute, generator)

    @functools.wraps(compute)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return compute(*args, **kwargs)
        except NOT_RETRIED as error:
            raise _final(error) from error

    return cast(Compute, function)
