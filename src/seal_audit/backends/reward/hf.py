"""Hugging Face sequence-classification RMs (OpenAssistant DeBERTa and any AutoModelForSequenceClassification).

The reward is the raw logit at ``logit_index`` (no sigmoid), as in SEAL. Input formats:

- ``text-pair``: ``tokenizer(context, response)`` (the OpenAssistant RMs);
- ``chat-template``: the hh-rlhf context parsed into messages plus the response as the final
  assistant message, rendered with ``tokenizer.apply_chat_template`` (modern chat RMs);
- ``concat``: one string from a template (``{context}{response}`` by default).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seal_audit.backends.reward._runtime import (
    choose_device,
    choose_dtype,
    default_batch_tokens,
    dir_fingerprint,
    dtype_name,
    import_torch,
    import_transformers,
    tune_cpu_allocator,
)
from seal_audit.backends.reward._tokenize import FastTokenizer
from seal_audit.backends.reward.base import INPUT_FORMATS, Encoded, RMOptions, offline_mode
from seal_audit.backends.reward.text import hh_messages
from seal_audit.data.errors import ConfigError, OfflineError


def resolve_model_source(source: str, revision: str | None) -> tuple[str, str | None, str | None]:
    """(what to pass to from_pretrained, resolved revision, fingerprint) for a directory or hub id.

    A hub id is looked up in the local Hugging Face cache first, so an offline machine that has
    the model never touches the network and one that lacks it fails at once, with advice,
    instead of after a chain of connection timeouts.
    """
    p = Path(source).expanduser()
    if p.is_dir():
        return str(p.resolve()), revision, dir_fingerprint(p)
    if p.exists() or source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ConfigError(f"RM '{source}': not a model directory (and not a hub id 'owner/name')")
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(source, revision=revision, local_files_only=True)
    except Exception as exc:
        if offline_mode():
            raise OfflineError(
                f"RM '{source}' is not in the local Hugging Face cache and downloads are switched off "
                "(HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE); download it where there is network "
                "(huggingface-cli download " + source + ") or pass a local directory: "
                "--rm NAME=/path/to/model-dir"
            ) from exc
        return source, revision, None
    commit = Path(str(local)).name
    return str(local), commit, commit


class HFRewardModel:
    """A sequence classifier run in eval mode under ``torch.inference_mode``."""

    name = "hf"

    def __init__(
        self,
        source: str,
        options: RMOptions | None = None,
        *,
        loaded: tuple[Any, Any, str | None] | None = None,
    ) -> None:
        """``loaded`` = (model, tokenizer, fingerprint): a model already in memory (the Python API,
        ``backends/reward/python.py``); it stays on its device and dtype unless options name them."""
        opts = options or RMOptions()
        torch = import_torch()
        transformers = import_transformers()
        self.source = source
        if loaded is not None:
            model, self.tokenizer, given = loaded
            target, revision, fingerprint = source, None, given
            self.device = choose_device(opts.device) if opts.device else next(model.parameters()).device
            self.dtype = choose_dtype(opts.dtype, self.device) if opts.dtype else model.dtype
            model = model.to(dtype=self.dtype)
        else:
            target, revision, fingerprint = resolve_model_source(source, opts.revision)
            self.device = choose_device(opts.device)
            self.dtype = choose_dtype(opts.dtype, self.device)
        kw: dict[str, Any] = {"revision": revision, "trust_remote_code": opts.trust_remote_code}
        try:
            if loaded is None:
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(target, **kw)
                model = transformers.AutoModelForSequenceClassification.from_pretrained(
                    target, dtype=self.dtype, **kw
                )
        except OSError as exc:
            text = str(exc)
            if "connect" in text.lower() or "offline" in text.lower() or "resolve" in text.lower():
                raise OfflineError(
                    f"RM '{source}': could not download ({text.splitlines()[0]}); pass a local directory"
                ) from exc
            raise ConfigError(f"RM '{source}': cannot load: {text.splitlines()[0]}") from exc
        except ValueError as exc:
            # transformers' reasons are paragraphs (the tokenizer one is five lines): one line
            raise ConfigError(f"RM '{source}': cannot load: {' '.join(str(exc).split())}") from exc
        if revision is None:
            revision = getattr(model.config, "_commit_hash", None)
        self.revision = revision
        self.model = model.to(self.device).eval()
        if self.device.type == "cpu":
            tune_cpu_allocator()
        n_labels = int(getattr(model.config, "num_labels", 1))
        if not 0 <= opts.logit_index < n_labels:
            raise ConfigError(
                f"RM '{source}': logit_index {opts.logit_index} but the model has {n_labels} logits"
            )
        self.logit_index = opts.logit_index
        self.fast = FastTokenizer(self.tokenizer)
        fmt = opts.format or (
            "chat-template" if getattr(self.tokenizer, "chat_template", None) else "text-pair"
        )
        if fmt not in INPUT_FORMATS:
            raise ConfigError(f"RM '{source}': unknown format '{fmt}'")
        if fmt == "chat-template" and not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"RM '{source}': format chat-template but the tokenizer has no chat template")
        self.format = fmt
        self.template = opts.template
        self.max_length = opts.max_length or _model_max_length(self.tokenizer, model.config)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
            if getattr(model.config, "pad_token_id", None) is None:
                model.config.pad_token_id = pad
        self.pad_id = int(pad)
        self.use_token_types = "token_type_ids" in getattr(self.tokenizer, "model_input_names", [])
        self._batch_tokens = opts.batch_tokens or default_batch_tokens(self.device)
        self._max_batch = opts.max_batch
        ident: dict[str, Any] = {
            "backend": "hf",
            # a directory is identified by its content, so moving it keeps the cache valid
            "model": Path(target).name if Path(source).expanduser().is_dir() else source,
            "revision": revision,
            "fingerprint": fingerprint,
            "format": fmt,
            "max_length": self.max_length,
            "logit_index": self.logit_index,
            "dtype": dtype_name(self.dtype),
        }
        if fmt == "concat":
            ident["template"] = self.template
        if fmt == "chat-template":
            ident["chat_template"] = hashlib.sha256(str(self.tokenizer.chat_template).encode()).hexdigest()[
                :16
            ]
        self._identity = ident
        del torch

    # --- RewardModel protocol ------------------------------------------------------------
    @property
    def identity(self) -> Mapping[str, Any]:
        return self._identity

    @property
    def batch_tokens(self) -> int:
        return self._batch_tokens

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def encode(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        if self.format == "text-pair":
            return self.fast.encode_text_pairs(items, self.max_length)
        if self.format == "chat-template":
            return [self._encode_chat(c, r) for c, r in items]
        return [self._encode_concat(c, r) for c, r in items]

    def score_batch(self, batch: Sequence[Encoded]) -> list[float]:
        torch = import_torch()
        ids, types, mask = pad_batch(batch, self.pad_id)
        inputs: dict[str, Any] = {
            "input_ids": torch.from_numpy(ids).to(self.device, non_blocking=True),
            "attention_mask": torch.from_numpy(mask).to(self.device, non_blocking=True),
        }
        if self.use_token_types:
            inputs["token_type_ids"] = torch.from_numpy(types).to(self.device, non_blocking=True)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        values: list[float] = logits[:, self.logit_index].float().cpu().tolist()
        return values

    # --- formats -------------------------------------------------------------------------
    def _render_chat(self, messages: list[dict[str, str]]) -> str:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False)
        return str(text)

    def _encode_chat(self, context: str, response: str) -> Encoded:
        """Whole earliest turns are dropped until the conversation fits; if the last exchange alone
        is too long, its tokens are cut from the left (or, if the response alone overflows, the
        response's first tokens are kept)."""
        messages = hh_messages(context, response)
        ids, too_long = self.fast.encode_rendered(self._render_chat(messages), self.max_length)
        truncated = too_long
        while too_long:
            start = 1 if messages[0]["role"] == "system" else 0
            rest = messages[start:]
            if len(rest) <= 2:
                break
            # drop one turn, then up to the next user message so roles keep alternating
            cut = 1
            while cut < len(rest) - 1 and rest[cut]["role"] != "user":
                cut += 1
            messages = messages[:start] + rest[cut:]
            ids, too_long = self.fast.encode_rendered(self._render_chat(messages), self.max_length)
        if too_long:
            resp_ids = self.fast.plain([messages[-1]["content"]])[0].ids
            ids = ids[: self.max_length] if len(resp_ids) >= self.max_length else ids[-self.max_length :]
        return Encoded(length=len(ids), n_tokens=len(ids), truncated=truncated, data=(ids, [0] * len(ids)))

    def _encode_concat(self, context: str, response: str) -> Encoded:
        """Context characters are removed from the left at token boundaries until the text fits."""
        tok = self.fast.tok
        text = self.template.format_map({"context": context, "response": response})
        enc = tok.encode(text, add_special_tokens=True)
        truncated = len(enc.ids) > self.max_length
        ctx = context
        tries = 0
        while len(enc.ids) > self.max_length and ctx and tries < 8:
            excess = len(enc.ids) - self.max_length + tries
            offsets = tok.encode(ctx, add_special_tokens=False).offsets
            ctx = ctx[offsets[excess][0] :] if excess < len(offsets) else ""
            enc = tok.encode(
                self.template.format_map({"context": ctx, "response": response}), add_special_tokens=True
            )
            tries += 1
        if len(enc.ids) > self.max_length:
            plain = tok.encode(
                self.template.format_map({"context": ctx, "response": response}), add_special_tokens=False
            )
            plain.truncate(max(1, self.max_length - self.fast.single_specials), direction="right")
            enc = tok.post_process(plain, None, add_special_tokens=True)
        return Encoded(
            length=len(enc.ids), n_tokens=len(enc.ids), truncated=truncated, data=(enc.ids, enc.type_ids)
        )


def pad_batch(batch: Sequence[Encoded], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded (ids, token types, attention mask) int64 arrays of one batch."""
    longest = max(len(e.data[0]) for e in batch)
    ids = np.full((len(batch), longest), pad_id, dtype=np.int64)
    types = np.zeros((len(batch), longest), dtype=np.int64)
    mask = np.zeros((len(batch), longest), dtype=np.int64)
    for row, e in enumerate(batch):
        seq, tt = e.data
        ids[row, : len(seq)] = seq
        types[row, : len(tt)] = tt
        mask[row, : len(seq)] = 1
    return ids, types, mask


def _model_max_length(tokenizer: Any, config: Any) -> int:
    """The smallest finite limit among the tokenizer's and the position table's (fallback 512)."""
    limits = []
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < 1_000_000:
        limits.append(tml)
    mpe = getattr(config, "max_position_embeddings", None)
    if isinstance(mpe, int) and mpe > 0:
        limits.append(mpe)
    return min(limits) if limits else 512
