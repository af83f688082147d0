"""Fine-tuning jobs: upload, create, follow (poll with backoff, stream events), resume, cancel, status.

``submit`` writes ``run.json`` as soon as the job exists, so a client killed mid-poll is picked up with
``resume`` (by job id or run folder) without creating, or paying for, a second job. A run folder that
already holds an unfinished or successful job refuses a new ``submit``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from ftbench.errors import FineTuneFailed, InputError
from ftbench.finetune.openai.data import file_sha256
from ftbench.finetune.openai.run import append_events, cost_record, iso, load_run, recorded_event_ids
from ftbench.finetune.record import TERMINAL, OpenAIRunRecord, check_run_dir_writable, write_run_json
from ftbench.openai_client import OpenAIApi, redact_known
from ftbench.pricing import PriceOverride, price_for, training_cost

#: New runs fine-tune this model: one OpenAI fine-tunes today. The study's gpt-3.5-turbo-0613 is kept only for
#: pricing the reproduction (ftbench.finetune.study).
DEFAULT_MODEL = "gpt-4.1-mini-2025-04-14"
#: Models OpenAI no longer fine-tunes, with the model ftbench suggests instead; refused before anything is uploaded.
NOT_FINE_TUNABLE = {"gpt-3.5-turbo-0613": DEFAULT_MODEL, "gpt-3.5-turbo-16k-0613": DEFAULT_MODEL,
                    "babbage-002": DEFAULT_MODEL, "davinci-002": DEFAULT_MODEL}


@dataclass(frozen=True)
class JobSpec:
    """What to fine-tune: ``n_epochs=None`` leaves the epoch count to OpenAI's default."""

    model: str
    training_file: Path
    validation_file: Path | None = None
    n_epochs: int | None = None
    suffix: str | None = None
    seed: int | None = None
    task: str | None = None


@dataclass(frozen=True)
class PollPolicy:
    """Poll every ``interval_s``, growing by ``growth`` while nothing changes, up to ``max_interval_s``."""

    interval_s: float = 10.0
    max_interval_s: float = 120.0
    growth: float = 1.5

    def next_interval(self, current: float, news: bool) -> float:
        return self.interval_s if news else min(self.max_interval_s, current * self.growth)


@dataclass(frozen=True)
class Job:
    """The fields of an OpenAI ``fine_tuning.job`` that ftbench uses."""

    id: str
    status: str
    model: str
    fine_tuned_model: str | None
    trained_tokens: int | None
    created_at: int | None
    finished_at: int | None
    hyperparameters: dict[str, Any]
    training_file: str | None
    validation_file: str | None
    error: dict[str, Any] | None


@dataclass(frozen=True)
class Event:
    id: str
    created_at: int
    level: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, "level": self.level, "message": self.message,
                "data": self.data}


class Observer(Protocol):
    def on_event(self, event: Event) -> None: ...
    def on_job(self, job: Job) -> None: ...


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, dict, list)):
        return value
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else dict(vars(value))


def job_from_api(obj: Any) -> Job:
    error = _plain(getattr(obj, "error", None)) or None
    if error is not None and not any(error.get(key) for key in ("code", "message")):
        error = None  # OpenAI sends an empty error object for jobs that did not fail
    return Job(
        id=obj.id, status=obj.status, model=obj.model, fine_tuned_model=getattr(obj, "fine_tuned_model", None),
        trained_tokens=getattr(obj, "trained_tokens", None), created_at=getattr(obj, "created_at", None),
        finished_at=getattr(obj, "finished_at", None),
        hyperparameters={k: v for k, v in (_plain(getattr(obj, "hyperparameters", None)) or {}).items()},
        training_file=getattr(obj, "training_file", None), validation_file=getattr(obj, "validation_file", None),
        error=error,
    )


def event_from_api(obj: Any) -> Event:
    data = _plain(getattr(obj, "data", None))
    return Event(id=str(obj.id), created_at=int(obj.created_at), level=str(getattr(obj, "level", "info")),
                 message=str(obj.message), data=data if isinstance(data, dict) else {})


# --- single API calls -------------------------------------------------------------------------------------

def check_model(api: OpenAIApi, model: str) -> None:
    """Refuse a model OpenAI no longer fine-tunes, and one the key cannot see (``client.models``), before any
    file is uploaded. Whether a visible model can be fine-tuned only the job API says (at creation)."""
    instead = NOT_FINE_TUNABLE.get(model)
    if instead:
        raise InputError(f"OpenAI no longer fine-tunes {model}; use --model {instead} (its dated price is in "
                         "ftbench.pricing; the study's costs are computed by ftbench.finetune.study). "
                         "Nothing was uploaded")
    api.call(f"checking that model {model} exists before uploading anything",
             lambda: api.client.models.retrieve(model))


def upload(api: OpenAIApi, path: Path) -> str:
    """Upload a training/validation file; returns its file id."""
    content = path.read_bytes()
    created = api.call(f"uploading {path.name}",
                       lambda: api.client.files.create(file=(path.name, content), purpose="fine-tune"))
    return str(created.id)


def create_job(api: OpenAIApi, spec: JobSpec, training_id: str, validation_id: str | None) -> Job:
    options: dict[str, Any] = {"model": spec.model, "training_file": training_id}
    optional = {"validation_file": validation_id, "suffix": spec.suffix, "seed": spec.seed}
    options.update({key: value for key, value in optional.items() if value is not None})
    # The job's `method` carries the hyperparameters; the top-level `hyperparameters` is deprecated.
    hyperparameters = {"n_epochs": spec.n_epochs} if spec.n_epochs is not None else {}
    options["method"] = {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}
    job = api.call("creating the fine-tuning job", lambda: api.client.fine_tuning.jobs.create(**options))
    return job_from_api(job)


def retrieve(api: OpenAIApi, job_id: str) -> Job:
    return job_from_api(api.call(f"retrieving job {job_id}",
                                 lambda: api.client.fine_tuning.jobs.retrieve(job_id)))


def recent_events(api: OpenAIApi, job_id: str, limit: int = 100) -> list[Event]:
    """The job's latest ``limit`` events, oldest first."""
    page = api.call(f"listing events of job {job_id}",
                    lambda: api.client.fine_tuning.jobs.list_events(job_id, limit=limit))
    return sorted((event_from_api(e) for e in page.data), key=lambda e: (e.created_at, e.id))


def cancel(api: OpenAIApi, job_id: str) -> Job:
    return job_from_api(api.call(f"cancelling job {job_id}", lambda: api.client.fine_tuning.jobs.cancel(job_id)))


# --- following a job --------------------------------------------------------------------------------------

def follow(api: OpenAIApi, job_id: str, poll: PollPolicy, observers: Sequence[Observer]) -> tuple[Job, list[Event]]:
    """Poll ``job_id`` until it ends, passing new events and status changes to ``observers``."""
    seen: dict[str, Event] = {}
    interval, last_status = poll.interval_s, None
    while True:
        job = retrieve(api, job_id)
        fresh = [event for event in recent_events(api, job_id) if event.id not in seen]
        for event in fresh:
            seen[event.id] = event
            for observer in observers:
                observer.on_event(event)
        if job.status != last_status:
            for observer in observers:
                observer.on_job(job)
        if job.status in TERMINAL:
            return job, sorted(seen.values(), key=lambda e: (e.created_at, e.id))
        interval = poll.next_interval(interval, news=bool(fresh) or job.status != last_status)
        last_status = job.status
        api.sleep(interval)


@dataclass
class Printer:
    """Progress display: status changes and events as timestamped lines, with step progress when known."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)

    def on_job(self, job: Job) -> None:
        self._line(time.time(), f"job {job.id}: {job.status}")

    def on_event(self, event: Event) -> None:
        progress = _progress(event.data.get("step"), event.data.get("total_steps"))
        level = "" if event.level == "info" else f"{event.level}: "
        self._line(event.created_at, f"{progress}{level}{event.message}")

    def _line(self, timestamp: float, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
        print(redact_known(f"[{stamp}] {text}"), file=self.stream, flush=True)


def _progress(step: Any, total: Any) -> str:
    if isinstance(step, int) and isinstance(total, int) and total > 0:
        return f"[step {step}/{total}, {100 * step / total:.0f}%] "
    return ""


@dataclass
class RunRecorder:
    """Keeps ``run.json`` and ``events.jsonl`` in ``run_dir`` up to date while a job is followed."""

    run_dir: Path
    run: OpenAIRunRecord
    _written: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._written = recorded_event_ids(self.run_dir)

    def on_event(self, event: Event) -> None:
        step = event.data.get("step")  # steps done so far (metrics events)
        if isinstance(step, int):
            self.run.steps = max(self.run.steps or 0, step)
        if event.id not in self._written:
            append_events(self.run_dir, [event.as_dict()])
            self._written.add(event.id)

    def on_job(self, job: Job) -> None:
        update_run(self.run, job)
        write_run_json(self.run_dir, self.run)


def update_run(run: OpenAIRunRecord, job: Job) -> None:
    """Copy what the job reports into the run record."""
    run.status = job.status
    run.fine_tuned_model = job.fine_tuned_model
    run.trained_tokens = run.tokens_seen = job.trained_tokens
    run.hyperparameters = job.hyperparameters
    run.created_at, run.finished_at = iso(job.created_at), iso(job.finished_at)
    if job.created_at is not None and job.finished_at is not None:
        run.wall_time_s = float(job.finished_at - job.created_at)
    run.error = job.error
    run.training_file_id = job.training_file or run.training_file_id
    run.validation_file_id = job.validation_file or run.validation_file_id


def finish_run(run: OpenAIRunRecord, job: Job, override: PriceOverride | None) -> OpenAIRunRecord:
    """Fill in the actual cost from ``trained_tokens``; an unknown price leaves ``cost`` empty with a note."""
    update_run(run, job)
    if job.trained_tokens is not None:
        try:
            price = price_for(job.model, override)
        except InputError as err:
            run.cost = {"usd": None, "basis": f"no price: {err}"}
        else:
            run.cost = cost_record(training_cost(job.trained_tokens, price), price)
            run.cost_usd = run.cost["usd"]
    return run


def describe_failure(job: Job, events: Sequence[Event], n_events: int = 8) -> str:
    """OpenAI's error for the job and its last events, as one message."""
    error = job.error or {}
    reason = error.get("message") or "no error message from OpenAI"
    code = f" [{error['code']}]" if error.get("code") else ""
    param = f" (param: {error['param']})" if error.get("param") else ""
    lines = [f"fine-tuning job {job.id} {job.status}: {reason}{code}{param}"]
    if events:
        lines.append("last events:")
        lines += [f"  {e.level}: {e.message}" for e in events[-n_events:]]
    return redact_known("\n".join(lines))


# --- the workflows --------------------------------------------------------------------------------------

def check_run_dir(run_dir: Path) -> None:
    """Refuse to start a second job where one is running or has succeeded (that would pay twice), or where its
    record could not be written."""
    check_run_dir_writable(run_dir)
    existing = load_run(run_dir)
    if existing is not None and existing.status not in ("failed", "cancelled"):
        hint = "use `resume` to follow it" if not existing.is_terminal else "choose another --out"
        raise InputError(f"{run_dir} already holds job {existing.job_id} ({existing.status}); {hint}")


def new_run(spec: JobSpec, job: Job, training_id: str, validation_id: str | None) -> OpenAIRunRecord:
    config: dict[str, Any] = {
        "model": spec.model, "n_epochs": spec.n_epochs if spec.n_epochs is not None else "auto",
        "suffix": spec.suffix, "seed": spec.seed,
        "training_file": str(spec.training_file), "training_sha256": file_sha256(spec.training_file),
        "validation_file": str(spec.validation_file) if spec.validation_file else None,
        "validation_sha256": file_sha256(spec.validation_file) if spec.validation_file else None,
    }
    run = OpenAIRunRecord(job_id=job.id, status=job.status, config=config, task=spec.task,
                    training_file_id=training_id, validation_file_id=validation_id)
    update_run(run, job)
    return run


def run_from_job(job: Job) -> OpenAIRunRecord:
    """A run record for a job submitted elsewhere (or whose run.json was lost)."""
    config = {"model": job.model, "n_epochs": job.hyperparameters.get("n_epochs", "auto")}
    run = OpenAIRunRecord(job_id=job.id, status=job.status, config=config)
    update_run(run, job)
    return run


@dataclass(frozen=True)
class Session:
    """How to talk to OpenAI and report while following a job."""

    api: OpenAIApi
    poll: PollPolicy = field(default_factory=PollPolicy)
    observers: Sequence[Observer] = ()
    prices: PriceOverride | None = None


def submit(session: Session, spec: JobSpec, run_dir: Path) -> OpenAIRunRecord:
    """Upload, create the job, record it at once, then follow it to the end (see :func:`watch`)."""
    check_run_dir(run_dir)
    check_model(session.api, spec.model)
    training_id = upload(session.api, spec.training_file)
    validation_id = upload(session.api, spec.validation_file) if spec.validation_file else None
    job = create_job(session.api, spec, training_id, validation_id)
    run = new_run(spec, job, training_id, validation_id)
    write_run_json(run_dir, run)
    return watch(session, run, run_dir)


def resume(session: Session, job_id: str | None, run_dir: Path) -> OpenAIRunRecord:
    """Follow an existing job (by id, or the one recorded in ``run_dir``) to the end; never creates a job."""
    run = load_run(run_dir)
    if job_id is None and run is None:
        raise InputError(f"no job id given and no run.json in {run_dir}")
    if run is not None and job_id is not None and run.job_id != job_id:
        raise InputError(f"{run_dir} records job {run.job_id}, not {job_id}; use another --out")
    if run is None:
        run = run_from_job(retrieve(session.api, str(job_id)))
        write_run_json(run_dir, run)
    return watch(session, run, run_dir)


def watch(session: Session, run: OpenAIRunRecord, run_dir: Path) -> OpenAIRunRecord:
    """Follow the run's job; write the final run.json; raise :class:`FineTuneFailed` unless it succeeded."""
    recorder = RunRecorder(run_dir, run)
    job, events = follow(session.api, run.job_id, session.poll, [*session.observers, recorder])
    write_run_json(run_dir, finish_run(run, job, session.prices))
    if job.status != "succeeded":
        raise FineTuneFailed(describe_failure(job, events))
    return run
