"""The embedded demo: one small Chinese task per C-MTEB task type, shipped inside the package.

Every folder comes from a source whose license allows redistribution; ``LICENSES.md`` (and an
``ATTRIBUTION.md`` in each folder) names the source, the license and what was changed. The
``eval=demo`` group reads it wherever rag_eval is installed, through ``${rag_eval.demo:<folder>}``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def demo_path(folder: str) -> str:
    """The absolute path of a demo folder, e.g. ``retrieval/cmrc2018-zh-mini``."""
    path = (ROOT / folder).resolve()
    if not path.is_relative_to(ROOT) or not path.is_dir():
        from rag_eval.errors import ConfigError

        found = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("*/*") if p.is_dir())
        raise ConfigError(f"demo folder '{folder}' is not in {ROOT}: use one of {', '.join(found)}")
    return str(path)
