"""Fixtures of the sweep tests: a tiny fit config to sweep, and a throwaway PostgreSQL server."""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

PG_ROOT = Path("/usr/lib/postgresql")


def tiny_fit_config(max_steps: int = 10, val_every: int = 5) -> dict:
    """SFT of builtin:tiny on a little arithmetic, validated every ``val_every`` steps."""
    arithmetic = "synthetic:arithmetic?n=512&n_valid=64&seed=0"
    return {
        "seed_everything": 0,
        "model": {"class_path": "autotrain_pl.objectives.SFTModule",
                  "init_args": {"model_name_or_path": "builtin:tiny", "learning_rate": 1e-3,
                                "lr_scheduler": "constant"}},
        "data": {"class_path": "autotrain_pl.data.ChatDataModule",
                 "init_args": {"data_path": arithmetic, "valid_path": f"{arithmetic}&split=valid",
                               "chat_format": "chatml", "batch_size": 16, "eval_batch_size": 64,
                               "max_length": 64}},
        "trainer": {"max_steps": max_steps, "val_check_interval": val_every,
                    "accelerator": "cpu", "enable_progress_bar": False,
                    "enable_model_summary": False, "logger": False},
    }


def write_sweep(path: Path, **settings) -> Path:
    """A sweep YAML over ``tiny_fit_config`` (``base_config`` may be replaced)."""
    settings.setdefault("base_config", tiny_fit_config())
    settings.setdefault("sweep_dir", str(path.parent / "sweep"))
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL cluster of its own on a loopback port, for the session. The server refuses
    to run as root, so as root it runs as ``nobody`` (its folder under /tmp, which nobody can
    reach)."""
    bins = sorted(p for p in PG_ROOT.glob("*/bin") if (p / "initdb").is_file())
    if not bins:
        pytest.skip(f"PostgreSQL server binaries not found under {PG_ROOT}/*/bin (Debian's "
                    "postgresql-15 package); the PostgreSQL sweep tests need a server")
    bin_dir = bins[-1]
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="autotrain-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL unprivileged")
        as_user = ["runuser", "-u", "nobody", "--"]
        shutil.chown(root, user="nobody")
    data, port = root / "data", _free_port()
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                    "-o", f"-p {port} -k {root} -h 127.0.0.1", "-w", "start"], check=True,
                   capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
