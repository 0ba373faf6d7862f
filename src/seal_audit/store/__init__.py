"""The run store: run directories, atomic tables, the content-addressed cache, table reading."""

from seal_audit.store.cache import Cache, cache_key, settings_hash
from seal_audit.store.io import (
    append_jsonl,
    atomic_path,
    open_text,
    read_any_table,
    table_format,
    write_json_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from seal_audit.store.run_store import RunStore, file_sha256, frame_to_pairs, pairs_to_frame

__all__ = [
    "Cache",
    "RunStore",
    "append_jsonl",
    "atomic_path",
    "cache_key",
    "file_sha256",
    "frame_to_pairs",
    "open_text",
    "pairs_to_frame",
    "read_any_table",
    "settings_hash",
    "table_format",
    "write_json_atomic",
    "write_parquet_atomic",
    "write_text_atomic",
]
