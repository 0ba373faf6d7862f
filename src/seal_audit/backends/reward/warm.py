"""What an RM's identity depends on, found without loading the model (for warm runs).

A reward's cache key is ``rm:<backend>|hash(identity)|text``, and the identity (resolved revision,
dtype, max length, weights fingerprint...) is only known once the backend has loaded the model:
a warm run used to load every model just to learn the keys it then found in the cache. The
*load inputs* computed here are everything that identity is a function of: the spec, the RM
options, a content fingerprint of every directory the backend would read (the RM's, and for a
local embed RM its encoder's), the device the backend would pick and the package version. The
scorer memoises ``load inputs → identity`` in the run's cache after a real load; when the inputs
are unchanged and every reward is cached, no model and no tokenizer is loaded (issue 18).

Only backends whose identity is fixed by files on disk take part (``hf``, ``local``); for the
others (``python:`` callables hash their source, the length baselines load nothing) this returns
None and the model is simply built.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from seal_audit.backends.reward.base import RMOptions, options_from_mapping
from seal_audit.data.errors import SealError

MEMO_VERSION = 1
"""Bumped when the shape of the load inputs or of the memoised identity changes."""


def device_hint(requested: str | None) -> str:
    """The device a backend would choose, guessed without importing torch.

    An explicit ``device`` option is taken as is. Otherwise an NVIDIA device node (with the
    ``CUDA_VISIBLE_DEVICES`` setting) or Apple silicon stands for "an accelerator may be chosen":
    when the guess is wrong the memoised identity is still the one of the model that filled the
    cache, so the rewards served are exactly those it computed and recorded.
    """
    if requested:
        return requested
    nvidia = any(Path("/dev").glob("nvidia[0-9]*"))
    if nvidia:
        return f"cuda?visible={os.environ.get('CUDA_VISIBLE_DEVICES', '')}"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mps?"
    return "cpu"


def load_inputs(spec: str, options: RMOptions | None = None) -> dict[str, Any] | None:
    """Everything the identity of the RM ``spec`` names depends on, or None when it cannot be told
    without loading (then the caller loads the model). Never imports torch or transformers."""
    from seal_audit.backends.reward import split_spec
    from seal_audit.backends.reward._runtime import dir_fingerprint

    try:
        kind, target, query = split_spec(spec)
        opts = options_from_mapping(query, options)
    except SealError:
        return None  # the real load reports the error
    base: dict[str, Any] = {
        "memo": MEMO_VERSION,
        "seal_audit": _version(),
        "spec": spec,
        "kind": kind,
        "options": opts.recorded(),
        "device": device_hint(opts.device),
    }
    try:
        if kind == "local":
            from seal_audit.backends.embed.encoder import resolve_encoder
            from seal_audit.backends.reward._runtime import read_json
            from seal_audit.backends.reward.local import CONFIG, local_rm_type

            path = Path(target).expanduser()
            if not path.is_dir() or local_rm_type(path) is None:
                return None
            inputs = {**base, "dir": str(path.resolve()), "fingerprint": dir_fingerprint(path)}
            config = read_json(path / CONFIG)
            if "encoder" in config:
                enc = resolve_encoder(str(config["encoder"]))
                inputs["encoder"] = {"dir": str(enc), "fingerprint": dir_fingerprint(enc)}
            return inputs
        if kind == "hf":
            from seal_audit.backends.reward.hf import resolve_model_source

            resolved, revision, fingerprint = resolve_model_source(target, opts.revision)
            if fingerprint is None:
                return None  # not in a local directory or the hub cache: the load decides
            return {**base, "source": resolved, "revision": revision, "fingerprint": fingerprint}
    except (SealError, OSError):
        return None
    return None


def _version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("seal-audit")
    except metadata.PackageNotFoundError:
        return None
