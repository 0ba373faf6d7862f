"""OpenAI Batch API mode: build the JSONL, upload, create, poll, collect -- resumable.

Half the price of live calls, at the cost of waiting (up to 24 h). Batch ids are written to a state
file the moment a batch is created, so a process that is killed, or a second process started later
(``seal label`` again), finds them and polls the same batches instead of paying twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from seal_audit.backends.llm.client import (
    RF_ORDER,
    ChatManyOutcome,
    ChatRequest,
    ChatResult,
    LLMClient,
    ParseFn,
)
from seal_audit.backends.llm.jsonrepair import ReplyError
from seal_audit.backends.llm.settings import cost_usd
from seal_audit.store.io import write_json_atomic

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_PER_BATCH = 50_000
"""OpenAI's limit of requests per batch file."""


class BatchJob(BaseModel):
    """One created batch and the request keys it carries."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    batch_id: str
    input_file_id: str
    keys: tuple[str, ...]
    created: str
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    collected: bool = False


class BatchState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    model: str
    jobs: tuple[BatchJob, ...] = Field(default_factory=tuple)


class StateStore(Protocol):
    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class JsonFileState:
    """Batch state in a JSON file, written atomically (another process may read it any time)."""

    path: Path

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None

    def save(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.path, state)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class BatchRunner:
    """Runs requests through the Batch API of ``client``'s endpoint, persisting state in ``state``."""

    def __init__(self, client: LLMClient, state: StateStore, *, sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.state_store = state
        self._sleep = sleep
        raw = state.load()
        self.state = BatchState.model_validate(raw) if raw else BatchState(model=client.settings.model)

    def _save(self) -> None:
        self.state_store.save(self.state.model_dump(mode="json"))

    def _replace_job(self, job: BatchJob) -> None:
        jobs = tuple(job if j.batch_id == job.batch_id else j for j in self.state.jobs)
        self.state = self.state.model_copy(update={"jobs": jobs})
        self._save()

    def open_keys(self) -> set[str]:
        """Keys already in a batch that has not been collected (not to be submitted again)."""
        return {
            k
            for j in self.state.jobs
            if not j.collected and j.status not in ("failed", "expired", "cancelled")
            for k in j.keys
        }

    def submit(self, requests: Sequence[ChatRequest]) -> list[BatchJob]:
        sdk = self.client.sdk()
        created: list[BatchJob] = []
        for start in range(0, len(requests), MAX_PER_BATCH):
            chunk = requests[start : start + MAX_PER_BATCH]
            lines = []
            for req in chunk:
                body = self.client.request_body(
                    req,
                    req.messages,
                    RF_ORDER.index("json_schema")
                    if self.client.settings.response_format == "auto"
                    else RF_ORDER.index(self.client.settings.response_format),
                )
                lines.append(
                    json.dumps(
                        {"custom_id": req.key, "method": "POST", "url": "/v1/chat/completions", "body": body},
                        ensure_ascii=False,
                    )
                )
            data = ("\n".join(lines) + "\n").encode("utf-8")
            f = sdk.files.create(file=("seal-batch.jsonl", data), purpose="batch")
            b = sdk.batches.create(
                input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            job = BatchJob(
                batch_id=b.id,
                input_file_id=f.id,
                keys=tuple(r.key for r in chunk),
                created=_now(),
                status=str(b.status),
            )
            self.state = self.state.model_copy(update={"jobs": (*self.state.jobs, job)})
            self._save()  # persisted before anything else can fail: never pay for a batch twice
            created.append(job)
        return created

    def refresh(self, job: BatchJob) -> BatchJob:
        b = self.client.sdk().batches.retrieve(job.batch_id)
        new = job.model_copy(
            update={
                "status": str(b.status),
                "output_file_id": b.output_file_id,
                "error_file_id": getattr(b, "error_file_id", None),
            }
        )
        if new != job:
            self._replace_job(new)
        return new

    def collect(self, job: BatchJob, parse: ParseFn | None) -> list[ChatResult]:
        """Results of a finished batch; keys with no line in the output come back failed."""
        s = self.client.settings
        price = self.client.price
        out: dict[str, ChatResult] = {}
        text = ""
        if job.output_file_id:
            text = self.client.sdk().files.content(job.output_file_id).text
        logs: list[dict[str, Any]] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            key = str(obj.get("custom_id"))
            resp = obj.get("response") or {}
            body = resp.get("body") or {}
            code = int(resp.get("status_code") or 0)
            usage = body.get("usage") or {}
            t_in, t_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            c = cost_usd(price, t_in, t_out, batch=True)
            status = "ok"
            if code != 200:
                r = ChatResult(
                    key,
                    "failed",
                    error=f"batch line HTTP {code}",
                    tokens_in=t_in,
                    tokens_out=t_out,
                    cost_usd=c,
                    http_calls=1,
                    model=s.model,
                )
                status = f"http_{code}"
            else:
                content = body["choices"][0]["message"].get("content") or ""
                try:
                    parsed = parse(content) if parse is not None else content
                    r = ChatResult(key, "ok", content, parsed, None, t_in, t_out, c, 0.0, 1, 0, s.model)
                except ReplyError as exc:
                    status = "invalid_reply"
                    r = ChatResult(
                        key,
                        "failed",
                        content,
                        None,
                        f"invalid reply (batch mode, no repair): {exc}",
                        t_in,
                        t_out,
                        c,
                        0.0,
                        1,
                        0,
                        s.model,
                    )
            out[key] = r
            logs.append(
                {
                    "time": _now(),
                    "model": s.model,
                    "key": key,
                    "batch_id": job.batch_id,
                    "attempt": 1,
                    "status": status,
                    "tokens_in": t_in,
                    "tokens_out": t_out,
                    "cost_usd": c,
                    "latency_s": None,
                    "usage_reported": bool(usage),
                }
            )
        for k in job.keys:
            if k not in out:
                out[k] = ChatResult(
                    k, "failed", error=f"no result in batch {job.batch_id} ({job.status})", model=s.model
                )
        for rec in logs:
            self.client.log_record(rec)
        self.client.flush_log()
        self._replace_job(job.model_copy(update={"collected": True}))
        return [out[k] for k in job.keys]

    def run(
        self,
        requests: Iterable[ChatRequest],
        *,
        parse: ParseFn | None = None,
        on_result: Callable[[ChatResult], None] | None = None,
        timeout_s: float | None = None,
        on_poll: Callable[[list[BatchJob]], None] | None = None,
    ) -> ChatManyOutcome:
        """Submit what is not already in an open batch, poll every open batch until done (or
        ``timeout_s``: then the run is 'stopped' and the next run resumes polling), collect."""
        reqs = list(requests)
        wanted = {r.key for r in reqs}
        open_keys = self.open_keys()
        new = [r for r in reqs if r.key not in open_keys]
        if new:
            self.submit(new)
        jobs = [j for j in self.state.jobs if not j.collected and set(j.keys) & wanted]
        results: list[ChatResult] = []
        spent = 0.0
        t0 = time.monotonic()
        while jobs:
            jobs = [self.refresh(j) for j in jobs]
            if on_poll is not None:
                on_poll(jobs)
            for j in [j for j in jobs if j.status in TERMINAL]:
                for r in self.collect(j, parse):  # all of them: earlier runs' keys get cached too
                    spent += r.cost_usd
                    if r.key in wanted:
                        results.append(r)
                    if on_result is not None:
                        on_result(r)
            jobs = [j for j in jobs if j.status not in TERMINAL]
            if not jobs:
                break
            if timeout_s is not None and time.monotonic() - t0 >= timeout_s:
                reason = f"batch(es) {', '.join(j.batch_id for j in jobs)} still running; run again to resume"
                done = {r.key for r in results}
                for q in reqs:
                    if q.key not in done:
                        sr = ChatResult(q.key, "stopped", error=reason, model=self.client.settings.model)
                        results.append(sr)
                        if on_result is not None:
                            on_result(sr)
                return ChatManyOutcome(tuple(results), True, reason, spent, {"batch_api": True})
            self._sleep(self.client.settings.batch_poll_s)
        return ChatManyOutcome(tuple(results), False, None, spent, {"batch_api": True})
