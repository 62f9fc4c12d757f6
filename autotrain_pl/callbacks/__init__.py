"""Lightning callbacks for autotrain_pl objectives."""

from autotrain_pl.callbacks.benchmark_eval import BenchmarkEvalCallback
from autotrain_pl.callbacks.best_model import BestModelCallback
from autotrain_pl.callbacks.enhanced_eval import enhanced_eval_callbacks
from autotrain_pl.callbacks.metrics_logger import JsonlMetricsLogger, MetricsLoggerCallback
from autotrain_pl.callbacks.model_summary import AutotrainModelSummary
from autotrain_pl.callbacks.periodic_eval import PeriodicEvalCallback
from autotrain_pl.callbacks.progress import AutotrainProgressBar
from autotrain_pl.callbacks.resume import ResumeCheckpoint
from autotrain_pl.callbacks.scheduled_eval import ScheduledEvalCallback
from autotrain_pl.callbacks.step_control import StepControlCallback

__all__ = [
    "AutotrainModelSummary",
    "AutotrainProgressBar",
    "BenchmarkEvalCallback",
    "BestModelCallback",
    "JsonlMetricsLogger",
    "MetricsLoggerCallback",
    "PeriodicEvalCallback",
    "ResumeCheckpoint",
    "ScheduledEvalCallback",
    "StepControlCallback",
    "enhanced_eval_callbacks",
]
