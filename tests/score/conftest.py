"""The RM fixtures of ``tests/rm_fixtures.py`` (shared with tests/backends)."""

from rm_fixtures import _one_torch_thread, hh_pairs, planted_embed_rm, tiny_rm  # noqa: F401
