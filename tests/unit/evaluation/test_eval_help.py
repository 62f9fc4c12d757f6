"""``aitrain eval --help`` lists row formats and metrics by hand (importing the registries costs
seconds of torch and datasets start-up): the lists must name what the registries hold."""

from autotrain_pl.data.formats import ROW_FORMATS
from autotrain_pl.evaluation.commands import ROW_FORMAT_NAMES, build_parser
from autotrain_pl.evaluation.metrics.registry import METRICS


def _help_of(flag: str) -> str:
    (action,) = [a for a in build_parser()._actions if flag in a.option_strings]
    return action.help


def test_row_format_help_names_every_row_format():
    assert set(ROW_FORMAT_NAMES) == {"auto", *ROW_FORMATS}


def test_metrics_help_names_every_registered_metric():
    listed = {name.strip(" ()") for name in
              _help_of("--metrics").replace(":", ",").replace(";", ",").split(",")}
    listed = {word for phrase in listed for word in phrase.split()}
    missing = [name for name in METRICS.names() if name not in listed]
    assert not missing, f"--metrics help does not name {missing}"
