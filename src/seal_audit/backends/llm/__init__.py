"""OpenAI-compatible chat backend shared by the LM-labeler and the rewrite stage.

Importing this package is cheap: ``openai`` is imported only when an ``LLMClient`` is built.
"""

from seal_audit.backends.llm.batch import BatchJob, BatchRunner, JsonFileState
from seal_audit.backends.llm.cached import (
    CachedCall,
    CacheWriter,
    cached_chat_many,
    llm_cache_key,
    split_cached,
    template_hash,
)
from seal_audit.backends.llm.client import (
    DEFAULT_REPAIR,
    ChatManyOutcome,
    ChatRequest,
    ChatResult,
    LLMClient,
    Message,
)
from seal_audit.backends.llm.jsonrepair import ReplyError, extract_json_object
from seal_audit.backends.llm.settings import (
    BUILTIN_PRICES,
    CHARS_PER_TOKEN,
    PRICES_DATE,
    LLMSettings,
    ModelPrice,
    cost_usd,
    estimate_tokens,
    lookup_price,
    settings_from_config,
)

__all__ = [
    "BUILTIN_PRICES",
    "CHARS_PER_TOKEN",
    "DEFAULT_REPAIR",
    "PRICES_DATE",
    "BatchJob",
    "BatchRunner",
    "CacheWriter",
    "CachedCall",
    "ChatManyOutcome",
    "ChatRequest",
    "ChatResult",
    "JsonFileState",
    "LLMClient",
    "LLMSettings",
    "Message",
    "ModelPrice",
    "ReplyError",
    "cached_chat_many",
    "cost_usd",
    "estimate_tokens",
    "extract_json_object",
    "llm_cache_key",
    "lookup_price",
    "settings_from_config",
    "split_cached",
    "template_hash",
]
