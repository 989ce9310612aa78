"""Stand-ins, generators and the one-machine runner (see the README).

Their entry points (`python -m sandbox.<module>`) use the pipelines' own code in plugins/, which
Airflow puts on the path for the DAGs; the same is done here once, so that every entry point
runs from the project folder as the README shows it, without setting PYTHONPATH."""

import sys
from pathlib import Path

_PLUGINS = str(Path(__file__).resolve().parents[1] / "plugins")
if _PLUGINS not in sys.path:
    sys.path.insert(0, _PLUGINS)
