"""The scripts under test are imported by their own names: ``scripts/`` goes on
``sys.path`` before the test modules are, as each script puts its own folder there to
import its siblings (``allocator_history`` imports ``truth``), so a script is one
module however many tests and scripts import it."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = str(Path(__file__).resolve().parent.parent.parent / "scripts")
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)
