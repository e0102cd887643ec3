"""Score tables, folder-wide reports and charts.

Per run (called by :func:`rag_eval.run_task`):

* :func:`print_summary` - the run's table, printed with rich;
* :func:`write_summary` - the run's ``summary.csv`` / ``summary.md`` and the ``failures.json``
  files that keep failed tasks visible to later reports (a failed task has no result file).

Over a whole output folder (every run, every Hydra multirun job, plain mteb result folders):

* :func:`collect_results` - one :class:`ResultRow` per result file (and per recorded failure);
* :func:`cmteb_averages` - C-MTEB leaderboard averages per model / stage;
* :func:`write_reports` - ``summary.csv``, ``summary.md``, ``averages.csv`` and two PNG charts;
* ``python -m rag_eval.report <folder>`` - the same from the command line.
"""

from __future__ import annotations

from rag_eval.report.collect import (
    FAILURES_FILE,
    ResultRow,
    collect_results,
    texts_evaluated,
    write_failures,
)
from rag_eval.report.summary import (
    SUMMARY_COLUMNS,
    _sample_text,
    print_summary,
    summary_rows,
    write_summary,
)
from rag_eval.report.tables import (
    AVERAGE_COLUMNS,
    REPORT_COLUMNS,
    Averages,
    cmteb_averages,
    print_report,
    write_reports,
)

__all__ = [
    "AVERAGE_COLUMNS",
    "FAILURES_FILE",
    "REPORT_COLUMNS",
    "SUMMARY_COLUMNS",
    "Averages",
    "ResultRow",
    "_sample_text",
    "cmteb_averages",
    "collect_results",
    "print_report",
    "print_summary",
    "summary_rows",
    "texts_evaluated",
    "write_failures",
    "write_reports",
    "write_summary",
]
