"""The LM-labeler: one chat call per transcript returns every requested feature as one JSON object.

Why one call per text with all features (as the reference did): the conversation dominates the
prompt, so asking for 19 keys at once costs barely more than asking for one.

Robustness, in order: JSON-schema structured output where the endpoint accepts it (the schema is
also written into the prompt for endpoints that do not); tolerant parsing of what comes back (code
fences, trailing chatter, "yes"/"no" strings, ``last_response_`` key prefixes, case); up to
``max_repairs`` follow-up turns that show the model what was wrong; after that the text is recorded
as failed -- kept in the table with its error, not cached, so the next run asks again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seal_audit.backends.llm import (
    BatchRunner,
    CachedCall,
    ChatRequest,
    ChatResult,
    JsonFileState,
    LLMClient,
    LLMSettings,
    Message,
    ReplyError,
    cached_chat_many,
    cost_usd,
    extract_json_object,
    llm_cache_key,
    split_cached,
    template_hash,
)
from seal_audit.backends.llm.settings import CHARS_PER_TOKEN, PRICES_DATE
from seal_audit.data.errors import ConfigError
from seal_audit.data.records import FeatureSpec, text_hash
from seal_audit.features.base import (
    FeaturizerOutcome,
    LabelContext,
    LabelItem,
    LabelRow,
    Progress,
    failed_rows,
    reason_counts,
    register_featurizer,
)
from seal_audit.features.specs import SEAL_FEATURES, feature_set_hash
from seal_audit.store.cache import settings_hash
from seal_audit.store.run_store import RunStore

CACHE_NAMESPACE = "lm_labels"
CALLS_LOG = "lm_calls"
BATCH_STATE = "lm_batches.json"

SYSTEM_PROMPT = (
    "You are a careful annotator. You read an excerpt of a conversation between a human and an AI "
    "assistant, taken from a dataset used to train reward models, and you describe it with a fixed set "
    "of labels. Judge only what is in the text. Answer with a single JSON object and nothing else."
)

USER_TEMPLATE = """Label the conversation below. Return one JSON object with exactly these keys:

{keys}
{lists}
Reply with only the JSON object. JSON schema: {schema}

<conversation>
{text}
</conversation>"""

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", "none"}


def _value_hint(s: FeatureSpec) -> str:
    if s.list_valued:
        return "list of strings from the list below (may be empty)"
    if s.kind == "binary":
        return "true or false"
    if s.kind == "ordinal" and s.levels:
        return "one of " + ", ".join(f'"{lv}"' for lv in s.levels)
    return "a number"


def describe_keys(specs: Sequence[FeatureSpec]) -> str:
    return "\n".join(f"- {s.name} ({_value_hint(s)}): {s.definition}" for s in specs)


def describe_lists(specs: Sequence[FeatureSpec]) -> str:
    out = []
    for s in specs:
        if s.list_valued and s.levels:
            out.append(f"\nAllowed values for {s.name}:\n" + "\n".join(f"- {lv}" for lv in s.levels) + "\n")
    return "".join(out)


def build_schema(specs: Sequence[FeatureSpec]) -> dict[str, Any]:
    """The JSON schema of a reply (strict structured-output compatible: all keys required)."""
    props: dict[str, Any] = {}
    for s in specs:
        if s.list_valued:
            item: dict[str, Any] = {"type": "string"}
            if s.levels:
                item["enum"] = list(s.levels)
            props[s.name] = {"type": "array", "items": item}
        elif s.kind == "binary":
            props[s.name] = {"type": "boolean"}
        elif s.kind == "ordinal" and s.levels:
            props[s.name] = {"type": "string", "enum": list(s.levels)}
        else:
            props[s.name] = {"type": "number"}
    return {
        "type": "object",
        "properties": props,
        "required": [s.name for s in specs],
        "additionalProperties": False,
    }


def prompt_prefix(specs: Sequence[FeatureSpec]) -> str:
    """Everything of the user prompt before the text (built once per feature set, not per text)."""
    schema = json.dumps(build_schema(specs), ensure_ascii=False, separators=(",", ":"))
    head = USER_TEMPLATE.partition("{text}")[0]
    return head.format(keys=describe_keys(specs), lists=describe_lists(specs), schema=schema)


PROMPT_SUFFIX = USER_TEMPLATE.partition("{text}")[2]


def render_prompt(specs: Sequence[FeatureSpec], text: str) -> str:
    """The user prompt of one text (the text is inserted verbatim, braces and all)."""
    return prompt_prefix(specs) + text + PROMPT_SUFFIX


def _coerce(s: FeatureSpec, raw: Any) -> float | list[str]:
    """One value, tolerant of the usual deviations; ValueError with the reason otherwise."""
    if s.list_valued:
        if raw is None:
            return []
        vals = [raw] if isinstance(raw, str) else raw
        if not isinstance(vals, list):
            raise ValueError("expected a list of strings")
        out: list[str] = []
        allowed = {lv.lower(): lv for lv in (s.levels or ())}
        for v in vals:
            if not isinstance(v, str):
                raise ValueError("expected a list of strings")
            if not allowed:
                out.append(v)
            elif v.strip().lower() in allowed:
                out.append(allowed[v.strip().lower()])
            # unknown items are dropped: the list is descriptive, a near-miss is not worth a repair
        return sorted(set(out), key=out.index)
    if s.kind == "binary":
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        if isinstance(raw, (int, float)) and raw in (0, 1):
            return float(raw)
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return 1.0 if raw.strip().lower() in _TRUE else 0.0
        raise ValueError("expected true or false")
    if s.kind == "ordinal" and s.levels:
        values = s.level_values or tuple(float(i) for i in range(len(s.levels)))
        if isinstance(raw, str):
            low = raw.strip().lower()
            for lv, val in zip(s.levels, values, strict=True):
                if low == lv.lower() or (len(low) >= 3 and lv.lower().startswith(low)):
                    return float(val)
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool) and float(raw) in values:
            return float(raw)
        raise ValueError("expected one of " + ", ".join(s.levels))
    if isinstance(raw, bool):
        raise ValueError("expected a number")
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ValueError("expected a number") from None
    if math.isnan(v):
        raise ValueError("expected a number")
    return v


def _norm_key(k: object) -> str:
    key = str(k).strip().lower().replace(" ", "_").replace("-", "_")
    if key.startswith("last_response_"):
        key = key[len("last_response_") :]
    return key


def make_parser(specs: Sequence[FeatureSpec]) -> Callable[[str], dict[str, Any]]:
    """A parse function for ``LLMClient``: reply text -> ``{"values": {...}, "items": {...}}``
    (JSON-serialisable, so it can be cached), or ReplyError listing every problem at once."""
    # Names that normalisation leaves unchanged: a reply whose keys are all such names (the usual
    # structured-output reply) needs no normalisation pass -- it would be the identity.
    plain = frozenset(s.name for s in specs if _norm_key(s.name) == s.name)

    def parse(text: str) -> dict[str, Any]:
        obj = extract_json_object(text)
        norm: dict[str, Any]
        if all(k in plain for k in obj):
            norm = obj
        else:
            norm = {}
            for k, v in obj.items():
                norm.setdefault(_norm_key(k), v)
        values: dict[str, float] = {}
        items: dict[str, list[str]] = {}
        missing: list[str] = []
        bad: list[str] = []
        for s in specs:
            if s.name not in norm:
                missing.append(s.name)
                continue
            try:
                v = _coerce(s, norm[s.name])
            except ValueError as exc:
                bad.append(f"{s.name}={json.dumps(norm[s.name])[:60]} ({exc})")
                continue
            if isinstance(v, list):
                items[s.name] = v
                values[s.name] = float(len(v))
            else:
                values[s.name] = v
        problems = []
        if missing:
            problems.append("missing key(s): " + ", ".join(missing))
        if bad:
            problems.append("invalid value(s): " + "; ".join(bad))
        if problems:
            raise ReplyError("; ".join(problems))
        return {"values": values, "items": items}

    return parse


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """What a run will cost before it starts (shown for confirmation)."""

    model: str
    n_texts: int
    n_distinct: int
    n_cached: int
    n_calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    """None when no price is known for the model."""
    batch: bool
    note: str = (
        f"tokens estimated at {CHARS_PER_TOKEN:g} characters per token; repairs and retries not "
        f"included; built-in prices as of {PRICES_DATE}"
    )

    def describe(self) -> str:
        cost = (
            "unknown (no price for this model; give --price-in/--price-out)"
            if self.cost_usd is None
            else f"${self.cost_usd:,.4f}" + (" (Batch API: half price)" if self.batch else "")
        )
        return (
            f"{self.n_texts:,} texts ({self.n_distinct:,} distinct, {self.n_cached:,} already labeled) -> "
            f"{self.n_calls:,} calls to {self.model}; ~{self.tokens_in:,} input + ~{self.tokens_out:,} output "
            f"tokens; estimated cost {cost}. {self.note}."
        )


class LMLabeler:
    """LM-labeler featurizer (``name = "lm"``) over an OpenAI-compatible endpoint."""

    name = "lm"

    def __init__(
        self,
        settings: LLMSettings,
        features: Sequence[FeatureSpec] | None = None,
        *,
        max_cost: float | None = None,
        batch_timeout_s: float | None = None,
        client_factory: Callable[..., LLMClient] = LLMClient,
    ) -> None:
        specs = tuple(features) if features is not None else SEAL_FEATURES
        if not specs:
            raise ConfigError("the LM-labeler needs at least one feature")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError("duplicate feature names in the LM feature set")
        self.settings = settings
        self.feature_specs = tuple(
            s if s.source == "lm" else s.model_copy(update={"source": "lm"}) for s in specs
        )
        self.max_cost = max_cost
        self.batch_timeout_s = batch_timeout_s
        self._client_factory = client_factory
        self._parse = make_parser(self.feature_specs)
        self.template_sha = template_hash(SYSTEM_PROMPT + "\x00" + USER_TEMPLATE + "\x00v1")
        self.settings_sha = settings_hash(
            {"features": feature_set_hash(self.feature_specs), **settings.cache_settings()}
        )
        # Every key is this prefix + the text hash: hash the settings once, not once per text.
        self._key_prefix = llm_cache_key(settings.model, self.template_sha, self.settings_sha, "")
        self._row_specs = tuple((s.name, s.list_valued) for s in self.feature_specs)
        example = {
            s.name: (["x" * 20] if s.list_valued else "neutral" if s.kind == "ordinal" else False)
            for s in self.feature_specs
        }
        self._est_out = math.ceil(len(json.dumps(example)) / CHARS_PER_TOKEN) + 8

    def specs(self) -> Sequence[FeatureSpec]:
        return self.feature_specs

    def cache_key(self, item: LabelItem) -> str:
        """``llm_cache_key(model, template_sha, settings_sha, text_hash(transcript))``."""
        return self._key_prefix + text_hash(item.transcript)

    def calls(self, items: Sequence[LabelItem]) -> list[CachedCall]:
        out = []
        prefix = prompt_prefix(self.feature_specs)
        schema = build_schema(self.feature_specs)
        system = Message("system", SYSTEM_PROMPT)
        for i, item in enumerate(items):
            req = ChatRequest(
                key=str(i),
                messages=(system, Message("user", prefix + item.transcript + PROMPT_SUFFIX)),
                json_schema=schema,
                json_schema_name="seal_features",
                est_tokens_out=self._est_out,
            )
            out.append(CachedCall(req, self.cache_key(item)))
        return out

    def estimate(self, items: Sequence[LabelItem], store: RunStore) -> CostEstimate:
        calls = self.calls(items)
        _, todo = split_cached(store.cache, CACHE_NAMESPACE, calls)
        distinct = {c.cache_key: c for c in todo}
        t_in = sum(c.request.est_tokens_in() for c in distinct.values())
        t_out = sum(c.request.est_tokens_out for c in distinct.values())
        price = self.settings.effective_price()
        cost = None if price is None else cost_usd(price, t_in, t_out, batch=self.settings.batch_api)
        return CostEstimate(
            self.settings.model,
            len(items),
            len({c.cache_key for c in calls}),
            len(items) - len(todo),
            len(distinct),
            t_in,
            t_out,
            cost,
            self.settings.batch_api,
        )

    def label(self, items: Sequence[LabelItem], ctx: LabelContext) -> FeaturizerOutcome:
        store = ctx.store
        if store is None:
            raise ConfigError("the LM-labeler needs a run store (for its cache and calls log)")
        calls = self.calls(items)
        rows: list[LabelRow] = []
        counts = {"done": 0, "failed": 0, "cached": 0}
        cost = [0.0]
        errors: list[str] = []
        unsent = [0]

        def on_result(r: ChatResult) -> None:
            item = items[int(r.key)]
            cost[0] += r.cost_usd
            counts["done"] += 1
            if r.status == "ok" and isinstance(r.parsed, Mapping):
                counts["cached"] += r.cached
                rows.extend(self._rows(item, r.parsed))
            else:
                counts["failed"] += 1
                unsent[0] += r.status == "stopped"
                errors.append(r.error or r.status)
                rows.extend(failed_rows(item, self.feature_specs, self.name, r.error or r.status))
            if ctx.on_progress is not None:
                ctx.progress(
                    Progress(
                        self.name, len(items), counts["done"], counts["failed"], counts["cached"], cost[0]
                    )
                )

        client = self._client_factory(self.settings, log=lambda recs: store.append_log(CALLS_LOG, recs))
        try:
            batch = (
                BatchRunner(client, JsonFileState(store.path(BATCH_STATE)))
                if self.settings.batch_api
                else None
            )
            out = cached_chat_many(
                client,
                store.cache,
                CACHE_NAMESPACE,
                calls,
                parse=self._parse,
                on_result=on_result,
                max_cost=self.max_cost,
                stop=ctx.stop,
                batch=batch,
                batch_timeout_s=self.batch_timeout_s,
            )
        finally:
            client.close()
        # A budget, a stop request or a Batch API wait leaves texts unsent on purpose (the next run
        # continues); anything else that stopped the run (an unreachable endpoint) is a failure.
        reason = out.stop_reason or ""
        budget_stop = out.stopped and (
            reason.startswith(("max cost", "stop requested"))
            or (self.settings.batch_api and "batch" in reason)
        )
        n_failed = counts["failed"] - (unsent[0] if budget_stop else 0)
        info = dict(out.info)
        info["max_failed"] = self.settings.max_failed
        return FeaturizerOutcome(
            self.name,
            tuple(rows),
            len(items),
            counts["failed"],
            counts["cached"],
            cost[0],
            out.stopped,
            out.stop_reason,
            status=self.settings.stage_status(len(items), n_failed, budget_stop=budget_stop),
            reasons=reason_counts(errors),
            info=info,
        )

    def _rows(self, item: LabelItem, parsed: Mapping[str, Any]) -> list[LabelRow]:
        values = parsed.get("values") or {}
        lists = parsed.get("items") or {}
        pid, side, variant, fz = item.pair_id, item.side, item.variant, self.name
        out = []
        for name, list_valued in self._row_specs:
            v = values.get(name)
            if v is None:
                out.append(
                    LabelRow(
                        pid,
                        side,
                        variant,
                        name,
                        math.nan,
                        fz,
                        "failed",
                        "value missing from the cached reply",
                    )
                )
                continue
            its = tuple(lists[name]) if list_valued and name in lists else None
            out.append(LabelRow(pid, side, variant, name, float(v), fz, "ok", None, its))
        return out


@register_featurizer("lm", description="LM-labeler: SEAL taxonomy (+ user features) from a chat endpoint")
def make_lm(
    settings: LLMSettings | None = None,
    features: Sequence[FeatureSpec] | None = None,
    **options: Any,
) -> LMLabeler:
    if settings is None:
        raise ConfigError("the 'lm' featurizer needs endpoint settings (--model, --base-url, --api-key-env)")
    return LMLabeler(settings, features, **options)
