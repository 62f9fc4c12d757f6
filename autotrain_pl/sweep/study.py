"""optuna studies: storage, samplers, pruners, and the worker loop every sweep runs.

Many workers (processes or machines) share one study through its storage: each asks the study for
a trial, runs it and tells the result, until the study holds ``n_trials`` finished trials. A run
that is started again resumes: finished trials are never repeated, and a trial whose worker died
(killed, Ctrl-C) is run again with the same parameters.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotrain_pl.errors import AutotrainError
from autotrain_pl.sweep.space import ParameterRange, grid_size

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("none", "median", "hyperband")
#: the seed's ``sweep_backend`` values, as samplers
BACKENDS = {"optuna": "tpe", "tpe": "tpe", "random": "random", "grid": "grid", "cmaes": "cmaes"}
#: user attributes the sweep keeps on trials
FAIL_REASON, INTERRUPTED = "fail_reason", "interrupted"
RETRY_OF, WORKER = "retry_of", "worker"

#: seconds between a running trial's heartbeats; after GRACE without one, another worker fails
#: it (and runs it again): how a worker on a machine that died is noticed.
HEARTBEAT, GRACE = 10, 60


class TrialFailed(Exception):
    """A trial that ended without a usable metric; the message is the reason kept on the trial."""


def storage_url(url: str | None, sweep_dir: os.PathLike | str) -> str:
    """``url``, or the SQLite file in the sweep directory."""
    return str(url) if url else f"sqlite:///{os.path.abspath(os.fspath(sweep_dir))}/study.db"


def normalize_sampler(name: str, field: str = "sampler") -> str:
    """Our sampler name for ``name`` (the seed's ``sweep_backend`` values included)."""
    sampler = BACKENDS.get(str(name).lower())
    if sampler is None:
        raise AutotrainError(f"{field}={str(name).lower()!r} is not a sampler; use one of: "
                             f"{', '.join(SAMPLERS)} (sweep_backend: optuna, grid, random)")
    return sampler


def check_direction(direction: str) -> None:
    if direction not in ("minimize", "maximize"):
        raise AutotrainError(f"direction={direction!r} must be minimize or maximize")


def open_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """An RDB storage with heartbeats, connected now so a bad URL fails at once (``None``: in
    memory, for a Python objective in one process)."""
    if url is None:
        return None
    if url.startswith("sqlite:"):
        # Concurrent workers on one SQLite file wait for its lock instead of failing at once.
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
    elif url.startswith("postgresql"):
        engine_kwargs = {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    else:
        engine_kwargs = {}
    attempt = 0
    while True:
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                                  heartbeat_interval=HEARTBEAT,
                                                  grace_period=GRACE,
                                                  heartbeat_stale_trial_callback=requeue)
        except Exception as error:  # sqlalchemy's connection and driver errors, ImportError
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()
            reason_text = reason[0] if reason else type(error).__name__
            # Workers that start together race to create optuna's tables (PostgreSQL refuses
            # the second CREATE TABLE): try again. A server that cannot be reached fails now.
            if attempt < 2 and not isinstance(error, ImportError) and \
                    "connect" not in reason_text.lower():
                attempt += 1
                time.sleep(attempt)
                continue
            raise AutotrainError(f"storage={redacted(url)}: cannot open the "
                                 f"study database ({reason_text}); check the URL, that the "
                                 "server is up and reachable, and for postgresql:// the "
                                 "driver: pip install 'autotrain_pl[postgres]'") from None


def redacted(url: str) -> str:
    """``url`` with its password, if any, as ``***``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def make_sampler(name: str, ranges: Sequence[ParameterRange],
                 seed: int | None) -> optuna.samplers.BaseSampler:
    """The optuna sampler of a ``normalize_sampler`` name."""
    if name == "tpe":
        # constant_liar: workers running at once do not all propose the same point.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler({r.name: r.grid_values() for r in ranges}, seed=seed)
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def make_pruner(spec: str | dict | None, max_resource: int | None) -> optuna.pruners.BasePruner:
    """``none``, ``median`` or ``hyperband``, or a mapping with ``type`` and the pruner's
    keyword arguments (``{type: median, n_warmup_steps: 50}``)."""
    options = dict(spec) if isinstance(spec, dict) else {"type": spec or "none"}
    kind = str(options.pop("type", "none")).lower()
    try:
        if kind == "none":
            return optuna.pruners.NopPruner()
        if kind == "median":
            options.setdefault("n_startup_trials", 2)
            return optuna.pruners.MedianPruner(**options)
        if kind == "hyperband":
            options.setdefault("min_resource", 1)
            options.setdefault("max_resource", max_resource or "auto")
            return optuna.pruners.HyperbandPruner(**options)
    except TypeError as error:
        raise AutotrainError(f"pruner: {error}") from None
    raise AutotrainError(f"pruner={kind!r} is not a pruner; use one of: "
                         f"{', '.join(PRUNERS)}")


def open_study(name: str, storage, sampler_name: str, ranges: Sequence[ParameterRange],
               direction: str, seed: int | None, pruner) -> optuna.Study:
    """Create the study, or join it when another worker (or an earlier run) made it. The worker
    that creates it samples from ``seed``; one that joins adds its process id, so two workers
    never walk the same random sequence."""
    check_direction(direction)
    try:
        sampler = make_sampler(sampler_name, ranges, seed)
        return optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                   pruner=pruner, direction=direction, load_if_exists=False)
    except optuna.exceptions.DuplicatedStudyError:
        joined_seed = None if seed is None else seed + os.getpid()
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner,
                                  sampler=make_sampler(sampler_name, ranges, joined_seed))
        if study.direction.name.lower() != direction:
            raise AutotrainError(f"study {name!r} in this storage was made to "
                                 f"{study.direction.name.lower()}, not {direction}; choose "
                                 "another study_name or sweep_dir") from None
        return study


@dataclass
class SweepResult:
    """What a sweep found. ``trials`` lists every trial of the study, all workers included."""

    metric: str
    best_params: dict[str, Any]
    best_value: float | None
    best_trial: int | None
    trials: list[FrozenTrial] = field(default_factory=list)
    study: optuna.Study | None = None

    @classmethod
    def of(cls, study: optuna.Study, metric: str) -> SweepResult:
        trials = study.get_trials(deepcopy=False)
        if not any(t.state == TrialState.COMPLETE for t in trials):
            return cls(metric, {}, None, None, trials, study)
        best = study.best_trial
        return cls(metric, dict(best.params), best.value, best.number, trials, study)

    def count(self, *states: TrialState) -> int:
        gone = superseded(self.trials)
        return sum(t.state in states for t in self.trials if t.number not in gone)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_trials(study: optuna.Study, objective: Callable[[optuna.Trial], float],
               n_trials: int | None, timeout: float | None,
               ranges: Sequence[ParameterRange]) -> int:
    """Run trials of ``study`` until it holds ``n_trials`` finished ones (every worker's count),
    or ``timeout`` seconds pass. Returns how many this worker ran. A failing trial is recorded as
    failed with its reason (``fail_reason``) and the study goes on. A grid study stops at the
    end of its grid."""
    if isinstance(study.sampler, optuna.samplers.GridSampler):
        size = grid_size(ranges)
        n_trials = size if n_trials is None else min(n_trials, size)
    if n_trials is None and timeout is None:
        raise AutotrainError("n_trials and timeout are both unset: the sweep would never end; "
                             "set n_trials (or a timeout)")
    started, ran = time.monotonic(), 0
    with _one_line_failures():
        while True:
            _requeue_dead_trials(study)
            trials = study.get_trials(deepcopy=False)
            gone = superseded(trials)
            live = [t for t in trials if t.number not in gone]
            waiting = sum(t.state == TrialState.WAITING for t in live)
            taken = sum(t.state != TrialState.WAITING for t in live)
            if n_trials is not None and taken >= n_trials and not waiting:
                return ran
            if timeout is not None and time.monotonic() - started >= timeout:
                return ran
            study.optimize(_recording(objective), n_trials=1, catch=(Exception,))
            ran += 1


@contextlib.contextmanager
def _one_line_failures():
    """optuna logs a failed trial with its traceback; the sweep keeps the reason on the trial and
    in its table, so the log line is enough (a trial's own output shows where it failed)."""

    def strip(record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True

    # On the handlers: records of optuna's child loggers reach them without the parent's filters.
    handlers = list(logging.getLogger("optuna").handlers)
    for handler in handlers:
        handler.addFilter(strip)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(strip)


def _recording(objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
    """The objective, keeping why a trial failed (and marking one that was interrupted, so a
    later run does it again) on the trial itself."""

    def run(trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER, worker_id())
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED, True)
            raise
        except Exception as error:
            trial.set_user_attr(FAIL_REASON, _reason(error))
            raise
        if value is None or isinstance(value, float) and math.isnan(value):
            reason = f"the objective returned {value!r}"
            trial.set_user_attr(FAIL_REASON, reason)
            raise TrialFailed(reason)
        return float(value)

    return run


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, AutotrainError | TrialFailed) else \
        f"{type(error).__name__}: {text}"


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue an interrupted trial's parameters again; from then on it no longer counts (see
    ``superseded``). Also optuna's ``heartbeat_stale_trial_callback``: a trial whose heartbeat
    stopped (its machine died) is failed by optuna and comes here."""
    if trial.params:
        study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF: trial.number})
        logging.getLogger(__name__).info("trial %d was interrupted; it runs again",
                                         trial.number)


def _retried(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of the trials queued again under a new number."""
    return {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}


def superseded(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of the trials that do not count: interrupted ones, and those run again."""
    return _retried(trials) | {t.number for t in trials if t.user_attrs.get(INTERRUPTED)}


def _requeue_dead_trials(study: optuna.Study) -> None:
    """Re-queue trials whose worker is gone: still RUNNING under a dead process of this machine
    (killed), or failed by Ctrl-C. Workers on other machines are noticed by their heartbeat."""
    with warnings.catch_warnings():  # "fail_stale_trials is experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    host = socket.gethostname()
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    for trial in trials:
        if trial.number in retried:
            continue
        worker = str(trial.user_attrs.get(WORKER, ""))
        if (trial.state == TrialState.RUNNING and worker.startswith(f"{host}:")
                and not _alive(int(worker.rsplit(":", 1)[1]))):
            study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            requeue(study, trial)
        elif trial.state == TrialState.FAIL and trial.user_attrs.get(INTERRUPTED):
            requeue(study, trial)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
