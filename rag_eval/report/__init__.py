"""Reports over a whole output folder (every run, every multirun job, plain mteb result folders).

The modules follow the data: ``rows`` (one :class:`ResultRow` per result file and recorded
failure) -> ``averages`` (C-MTEB averages per model / stage) -> ``tables`` (markdown, CSV, the
printed tables) and ``charts`` (PNG) -> ``writer`` (``summary.csv``, ``summary.md``,
``averages.csv``, the charts, and ``report.html`` through ``html``). ``python -m rag_eval.report <folder>``
runs the writer.
"""

from __future__ import annotations

from rag_eval.report.averages import Averages, cmteb_averages
from rag_eval.report.rows import PENDING, JobRow, ResultRow, collect_jobs, collect_results, texts_evaluated
from rag_eval.report.tables import JOB_COLUMNS, REPORT_COLUMNS, print_jobs, print_report, print_summary, status_line
from rag_eval.report.writer import write_reports
from rag_eval.results import FAILURES_FILE, write_failures

__all__ = [
    "FAILURES_FILE",
    "JOB_COLUMNS",
    "PENDING",
    "REPORT_COLUMNS",
    "Averages",
    "JobRow",
    "ResultRow",
    "cmteb_averages",
    "collect_jobs",
    "collect_results",
    "print_jobs",
    "print_report",
    "print_summary",
    "status_line",
    "texts_evaluated",
    "write_failures",
    "write_reports",
]
