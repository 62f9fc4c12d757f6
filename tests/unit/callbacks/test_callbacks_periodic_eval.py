"""PeriodicEvalCallback: when it evaluates, what it logs, the summary line and its checks."""

import pytest
from lightning.pytorch.loggers import Logger

from autotrain_pl.callbacks import PeriodicEvalCallback
from autotrain_pl.errors import AutotrainError


class RecordingLogger(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict]] = []

    name = "recording"
    version = 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append((step, dict(metrics)))


def test_summary_line_format():
    callback = PeriodicEvalCallback(eval_at_start=True, summary="quickstart: held-out accuracy")
    callback.start_metrics = {"exact_match": 0.123, "token_f1": 0.5}
    callback.end_metrics = {"exact_match": 0.789, "token_f1": 0.9}
    assert callback.summary_line() == "quickstart: held-out accuracy before=0.12 after=0.79"


@pytest.mark.parametrize("kwargs, field", [
    ({"summary": "x"}, "eval_at_start"),
    ({"summary": "x", "eval_at_start": True, "eval_at_end": False}, "eval_at_end"),
    ({"metrics": ["perplexity"]}, "val/ppl"),
    ({"metrics": ["no_such_metric"]}, "unknown metric"),
    ({"metrics": "exact_match"}, "list"),
    ({"every_n_steps": 2, "every_n_epochs": 1}, "not both"),
    ({"every_n_steps": 0}, "every_n_steps"),
    ({"limit": -1}, "limit"),
    ({"metric_kwargs": {"bleu": {}}}, "metric_kwargs"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(AutotrainError, match=field):
        PeriodicEvalCallback(**kwargs)


def test_before_after_values_and_one_summary_line(tmp_path, fakes, scripted, capsys):
    fake = scripted([0.25, 0.5, 0.75, 0.875, 1.0])
    logger = RecordingLogger()
    callback = PeriodicEvalCallback(eval_at_start=True, every_n_steps=2, summary="demo: acc",
                                    num_samples_to_log=1)
    trainer = fakes.trainer(tmp_path, [callback], max_steps=7, logger=logger)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert [(h["when"], h["step"]) for h in callback.history] == [
        ("start", 0), ("step", 2), ("step", 4), ("step", 6), ("end", 7)]
    assert len(fake.calls) == 5
    assert callback.start_metrics == {"exact_match": 0.25}
    assert callback.end_metrics == {"exact_match": 1.0}
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "demo: acc before=0.25 after=1.00"
    assert sum(line.startswith("demo: acc") for line in out) == 1
    logged = [(step, m["val/exact_match"]) for step, m in logger.rows if "val/exact_match" in m]
    assert logged[0] == (0, 0.25)  # the start value reaches the loggers
    assert len(logged) == len(callback.history)  # every evaluation is logged, whatever log_every


def test_every_n_steps_evaluates_on_multiples_and_at_end(tmp_path, fakes, scripted):
    fake = scripted([0.1, 0.2, 0.3, 0.4])
    callback = PeriodicEvalCallback(every_n_steps=3)
    trainer = fakes.trainer(tmp_path, [callback], max_steps=7, accumulate_grad_batches=2)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert [(h["when"], h["step"]) for h in callback.history] == [
        ("step", 3), ("step", 6), ("end", 7)]
    assert len(fake.calls) == 3  # one evaluation per step, not per micro-batch


def test_end_reuses_an_evaluation_at_the_same_step(tmp_path, fakes, scripted):
    fake = scripted([0.1, 0.2, 0.3])
    callback = PeriodicEvalCallback(eval_at_start=True)
    trainer = fakes.trainer(tmp_path, [callback], max_steps=6, val_check_interval=3)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert [(h["when"], h["step"]) for h in callback.history] == [
        ("start", 0), ("validation", 3), ("validation", 6)]
    assert callback.end_metrics == {"exact_match": 0.3} and len(fake.calls) == 3
    assert float(trainer.callback_metrics["val/exact_match"]) == pytest.approx(0.3)


def test_every_n_epochs(tmp_path, fakes, scripted):
    scripted([0.1, 0.2, 0.3])
    callback = PeriodicEvalCallback(every_n_epochs=2, eval_at_end=False)
    trainer = fakes.trainer(tmp_path, [callback], max_steps=-1, max_epochs=4,
                           limit_train_batches=2, limit_val_batches=0)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert [(h["when"], h["epoch"]) for h in callback.history] == [("epoch", 1), ("epoch", 3)]


def test_limit_and_limit_val_batches_cap_the_conversations(tmp_path, fakes, scripted):
    fake = scripted([0.0] * 4)
    callback = PeriodicEvalCallback(eval_at_start=True, limit=7, batch_size=2)
    trainer = fakes.trainer(tmp_path, [callback], max_steps=1, limit_val_batches=3)
    trainer.fit(fakes.objective(), datamodule=fakes.data(n_eval=10))
    assert fake.calls == [6, 6]  # min(limit=7, 3 batches of 2)
    fake = scripted([0.0] * 4)
    callback = PeriodicEvalCallback(eval_at_start=True, limit=None)
    trainer = fakes.trainer(tmp_path, [callback], max_steps=1, limit_val_batches=0.5)
    trainer.fit(fakes.objective(), datamodule=fakes.data(n_eval=10))
    assert fake.calls == [5, 5]


def test_validate_and_test_stages_log_their_prefix(tmp_path, fakes, scripted):
    scripted([0.5, 0.25])
    callback = PeriodicEvalCallback()
    trainer = fakes.trainer(tmp_path, [callback])
    module, data = fakes.objective(), fakes.data()
    data.test_dataloader = data.val_dataloader
    module.test_step = module.validation_step
    assert trainer.validate(module, datamodule=data)[0]["val/exact_match"] == 0.5
    assert trainer.test(module, datamodule=data)[0]["test/exact_match"] == 0.25


def test_missing_eval_data_fails_before_training(tmp_path, fakes, scripted):
    scripted([])
    trainer = fakes.trainer(tmp_path, [PeriodicEvalCallback()])
    with pytest.raises(AutotrainError, match="valid_path"):
        trainer.fit(fakes.objective(), datamodule=fakes.data(n_eval=0))


def test_samples_go_to_tensorboard_as_text(tmp_path, fakes, scripted):
    from lightning.pytorch.loggers import TensorBoardLogger

    texts = []

    class Writer:
        def add_text(self, tag, text, global_step=None):
            texts.append((tag, text, global_step))

        def __getattr__(self, name):  # scalars, hparams, flush...: ignored
            return lambda *args, **kwargs: None

    class RecordingTensorBoard(TensorBoardLogger):
        @property
        def experiment(self):
            return Writer()

    scripted([0.5])
    callback = PeriodicEvalCallback(eval_at_start=True, eval_at_end=False, num_samples_to_log=1)
    trainer = fakes.trainer(tmp_path, [callback], max_steps=1,
                            logger=RecordingTensorBoard(tmp_path))
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert texts == [("val/samples", "| prompt | prediction | reference |\n|---|---|---|\n"
                      "| What is 1 + 1? | 2 | 2 |", 0)]
