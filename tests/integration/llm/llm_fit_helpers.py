"""Constants of the ``aitrain llm`` fit tests (a module of its own: ``conftest`` is not
importable by name when several test folders are collected together)."""

#: Builtin models stand in for the guide's hub models (offline).
STUDENT, TEACHER = "builtin:tiny", "builtin:mini"
#: Two optimizer steps of tiny batches (--max-steps is a real autotrain flag).
SHORT = ["--max-steps", "2", "--batch-size", "4", "--gradient-accumulation", "1",
         "--max-seq-length", "64"]
