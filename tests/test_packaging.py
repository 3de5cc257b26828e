"""How the project is installed: the built-in layers cannot be shadowed, and every
package of the harness is listed in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_a_layers_folder_in_the_working_directory_does_not_shadow_the_builtin_layers(
    tmp_path: Path,
) -> None:
    # a user's own folder named layers (even one that is a package) next to where they run
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "__init__.py").write_text("MINE = True\n")
    res = subprocess.run(
        [sys.executable, "-m", "harness", "layers"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "fft  (built-in (layers))" in res.stdout
    assert "conv2d  (built-in (layers))" in res.stdout


def test_every_harness_package_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(config["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "harness").rglob("__init__.py")
    }
    assert found <= packages, f"add to [tool.setuptools] packages: {sorted(found - packages)}"
    assert config["package-dir"]["harness_layers"] == "layers"
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert entry["harness.layers"]["builtin"] == "harness_layers:LAYERS"
