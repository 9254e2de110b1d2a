"""The package as an operator installs it: a built wheel in a fresh virtualenv, not an editable checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], check=True, cwd=out
    )
    return next(out.glob("mailbot-*.whl"))


def test_wheel_ships_the_email_templates_and_the_demo_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("ack", "ack_no_report", "ack_review", "reminder", "late", "digest"):
        for part in ("subject", "txt", "html"):
            assert f"mailbot/notify/templates/{kind}.{part}.j2" in names
    assert "mailbot/demo/data/roster.csv" in names and "mailbot/web/templates/base.html" in names


def test_demo_runs_from_a_wheel_installed_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    # The venv sees the already installed dependencies (no network needed) but not this checkout: the
    # package itself comes only from the wheel, and everything runs from a folder outside the repository.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    python = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
        check=True,
        env=clean,
        cwd=tmp_path,
    )
    where = subprocess.run(
        [python, "-c", "import mailbot; print(mailbot.__file__)"],
        check=True,
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(str(env_dir)), where  # not the checkout
    demo = subprocess.run(
        [env_dir / "bin" / "mailbot", "demo", "--dir", str(tmp_path / "demo")],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
    assert list((tmp_path / "demo" / "outbox").glob("*-ack.eml")), "no receipt was written"
    check = subprocess.run(
        [env_dir / "bin" / "mailbot", "--config", str(tmp_path / "demo" / "mailbot.toml"), "check"],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "templates" in check.stdout and "FAIL templates" not in check.stdout, check.stdout


def test_templates_export_copies_without_overwriting(tmp_path: Path) -> None:
    target = tmp_path / "mau-thu"
    target.mkdir()
    (target / "ack.txt.j2").write_text("bản của cán bộ\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "templates", "export", str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "already there kept" in result.stdout
    assert (target / "ack.txt.j2").read_text(encoding="utf-8") == "bản của cán bộ\n"
    assert (target / "digest.html.j2").exists() and (target / "README.md").exists()
