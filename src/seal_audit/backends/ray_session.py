"""The Ray session shared by the scoring and labeling engines (the ``[ray]`` extra).

One place decides how a command connects to Ray and what it undoes on the way out, so that
``seal score --engine ray`` and ``seal label --engine ray`` can never disagree about it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from seal_audit.data.errors import MissingDependencyError

Log = Callable[[str], None]
RAY_NAMESPACE = "seal-audit"
OBJECT_STORE_ENV = "SEAL_RAY_OBJECT_STORE_MB"
"""Object-store size (MB) of a local Ray instance; Ray's default (30% of RAM) is far more than the
engines need and can exceed a small /dev/shm."""


def import_ray() -> Any:
    """``ray``, or the one clear "install the [ray] extra" error."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray") from exc
    return ray


def _quiet_ray_data(ray: Any) -> None:
    """Ray Data logs a progress report per second to stdout when it is not a terminal; the CLI
    draws its own progress bar, so only warnings get through."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    for name in ("ray.data", "ray.data._internal", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def ray_session(address: str | None = None, *, log: Log | None = None) -> Iterator[Any]:
    """Yields the ``ray`` module connected to a cluster, and undoes only what it did.

    Without ``address`` a local instance is started (all CPUs of this machine) and shut down on
    the way out -- on errors and Ctrl-C too, so no raylet outlives the command. With an address
    (``auto``, ``ray://host:10001``, ``host:6379``) the existing cluster is joined and the driver
    only disconnects: the cluster keeps running for the next command. A session someone already
    opened in this process (a notebook, the tests) is used as it is and left open.
    """
    ray = import_ray()
    if ray.is_initialized():
        _quiet_ray_data(ray)
        yield ray
        return
    common: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "namespace": RAY_NAMESPACE,
    }
    if address:
        ray.init(address=address, **common)
        if log:
            log(f"ray: joined the cluster at {address}")
    else:
        mb = os.environ.get(OBJECT_STORE_ENV)
        ray.init(
            num_cpus=os.cpu_count() or 1,
            object_store_memory=int(mb) * 1024 * 1024 if mb else None,
            **common,
        )
        if log:
            log(f"ray: started a local instance ({os.cpu_count()} CPUs); it stops when the command ends")
    try:
        _quiet_ray_data(ray)
        yield ray
    finally:
        ray.shutdown()
