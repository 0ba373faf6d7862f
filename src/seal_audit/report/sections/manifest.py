"""Run manifest: versions, models, featurizers, prompts, seeds and timings."""

from __future__ import annotations

from typing import Any

from seal_audit.report._blocks import Block, Code, Details, Heading, Note, Pre, Section, table
from seal_audit.report._html import pretty_json
from seal_audit.report.sections._common import Ctx

GUIDE = "How this run was made: versions, models, featurizers, prompts, seeds and timings — enough to regenerate every number here."


def _kv(d: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, dict):
            return "{" + _kv(v) + "}"
        return str(v)

    return ", ".join(f"{k}={one(v)}" for k, v in sorted(d.items()))


def build(ctx: Ctx) -> Section:
    m = ctx.data.manifest
    parts: list[Block] = []
    rows: list[list[Any]] = [
        ["seal-audit version", m.seal_audit_version if m else "–"],
        ["created / updated", f"{m.created if m else '–'} / {m.updated if m else '–'}"],
        ["run seed", str(m.seed) if m is not None and m.seed is not None else "–"],
        ["run directory", ctx.data.root],
    ]
    res = ctx.data.result
    if res is not None:
        from seal_audit.stats.analysis import SCHEMA

        rows.append(["stats.json schema", SCHEMA])
        opts = res.options.model_dump(mode="json")
        rows.append(["analysis options", ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))])
    parts.append(table(["", ""], rows, cls="data kv"))
    if m is not None and m.inputs:
        parts.append(Heading("Inputs"))
        parts.append(
            table(["path", "format", "sha256"], [[i.path, i.format, Code(i.sha256 or "–")] for i in m.inputs])
        )
    parts.append(Heading("Reward models"))
    if m is not None and m.rms:
        rrows = []
        for name, info in sorted(m.rms.items()):
            opts_rm, ident = info.options, info.identity
            rrows.append(
                [
                    name,
                    info.role,
                    info.spec,
                    str(ident.get("revision") or opts_rm.get("revision") or "–"),
                    str(ident.get("format") or opts_rm.get("format") or "–"),
                    ", ".join(
                        f"{k}={v}" for k, v in sorted(opts_rm.items()) if k not in ("format", "revision")
                    ),
                ]
            )
        parts.append(table(["name", "role", "model id / spec", "revision", "input format", "options"], rrows))
    else:
        parts.append(
            Note(
                "No RM settings recorded in the manifest."
                + (f" RMs in the scores: {', '.join(ctx.roles)}." if ctx.roles else "")
            )
        )
    if m is not None and m.stages:
        parts.append(Heading("Stages"))
        srows = []
        for name, st in m.stages.items():
            timing = {"seconds": st.seconds} if st.seconds is not None else {}
            srows.append(
                [
                    name,
                    st.status + (f": {st.message}" if st.message else ""),
                    st.finished or "–",
                    _kv(timing),
                    _kv(st.counters),
                ]
            )
        parts.append(table(["stage", "status", "finished", "timings", "counts"], srows))
        for name, st in m.stages.items():
            if st.options:
                parts.append(Details(f"Options of the {name} stage", (Pre(pretty_json(st.options)),)))
    if m is not None and m.config:
        parts.append(Details("The run's config", (Pre(pretty_json(m.config)),)))
    return Section("manifest", "Run manifest", GUIDE, tuple(parts))
