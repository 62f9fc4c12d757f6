"""``python -m autotrain_pl`` is ``aitrain`` (sweeps run isolated trials this way)."""

from autotrain_pl.cli import main

main()
