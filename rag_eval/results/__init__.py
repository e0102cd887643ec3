"""Results: the layout of the results tree, mteb-format result files, outcomes, failures.

``layout`` owns every path; ``files`` writes and reads result files atomically; ``outcome`` is
what a stage reports per task; ``failures`` keeps failed tasks visible to later reports.
"""

from rag_eval.results.failures import FAILURES_FILE, read_failures, write_failures
from rag_eval.results.files import (
    DISK_ERRNOS,
    atomic_write,
    atomic_write_text,
    check_writable,
    load_task_result,
    read_per_item,
    storage_error,
    storage_guard,
    write_model_meta,
    write_per_item,
    write_task_result,
)
from rag_eval.results.layout import ResultPlace, experiment_name, parse, per_item_path, result_path, safe_path_part
from rag_eval.results.outcome import TaskOutcome, main_score_of, split_scores

__all__ = [
    "DISK_ERRNOS",
    "FAILURES_FILE",
    "ResultPlace",
    "TaskOutcome",
    "atomic_write",
    "atomic_write_text",
    "check_writable",
    "experiment_name",
    "load_task_result",
    "main_score_of",
    "parse",
    "per_item_path",
    "read_per_item",
    "read_failures",
    "result_path",
    "safe_path_part",
    "split_scores",
    "storage_error",
    "storage_guard",
    "write_failures",
    "write_model_meta",
    "write_per_item",
    "write_task_result",
]
