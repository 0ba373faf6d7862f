"""LOAD stage: preference pairs from hh-rlhf transcripts, pairs files, chat files, labelled A/B files,
Hugging Face datasets and folders, and seal's own tables."""

from seal_audit.data.load_options import LoadOptions
from seal_audit.sources.formats import ColumnMap, render_turns, split_transcript
from seal_audit.sources.loader import (
    BadRecord,
    LoadResult,
    load,
    load_conversations,
    load_hf_dataset,
    load_hh_rlhf,
    load_multi_variant,
    load_pairs,
    load_pairs_file,
)

__all__ = [
    "BadRecord",
    "ColumnMap",
    "LoadOptions",
    "LoadResult",
    "load",
    "load_conversations",
    "load_hf_dataset",
    "load_hh_rlhf",
    "load_multi_variant",
    "load_pairs",
    "load_pairs_file",
    "render_turns",
    "split_transcript",
]
