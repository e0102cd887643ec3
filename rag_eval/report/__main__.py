"""``python -m rag_eval.report <folder>``: rebuild the table, averages and charts of earlier runs.

Over a folder that jobs are still writing into (a sweep on a cluster), it shows what is done,
FAILED, running and missing, and the jobs themselves (their ``.runs/`` records), in one pass.
Exit 0 when the reports were written; 2 (one line on stderr) when the folder is missing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rag_eval.report",
        description="Collect every result file under FOLDER (rag_eval or plain mteb layout) and write "
                    "summary.csv, summary.md, averages.csv and PNG charts into it.")
    parser.add_argument("folder", help="an output_folder of rag_eval, or an mteb results folder")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print the tables")
    args = parser.parse_args(argv)

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"rag_eval.report: error: results folder '{args.folder}' not found", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)

    from rag_eval.report import collect_jobs, collect_results, print_jobs, print_report, status_line, write_reports

    files = write_reports(folder, charts=not args.no_charts)
    if not args.quiet:
        rows, jobs = collect_results(folder), collect_jobs(folder)
        if rows:
            print_report(rows)
        else:
            print(f"no result files under {folder}")
        if jobs:
            print_jobs(jobs)
        print(status_line(rows, jobs))
        print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
