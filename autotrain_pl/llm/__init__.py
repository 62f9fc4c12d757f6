"""``aitrain llm``: the "aitraining" guide's flags, translated into the config ``aitrain fit``
runs (see ``translate``) and the table of every flag (``flags.FLAGS``)."""

from autotrain_pl.llm.flags import FLAGS
from autotrain_pl.llm.spec import Flag
from autotrain_pl.llm.translate import LlmRun, translate

__all__ = ["FLAGS", "Flag", "LlmRun", "translate"]
