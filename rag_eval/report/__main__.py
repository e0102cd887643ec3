"""``python -m rag_eval.report``: reports over earlier runs.

* ``python -m rag_eval.report <folder>``: rebuild the table, averages, charts and ``report.html``;
* ``python -m rag_eval.report compare <folder> [--a MODEL[/STAGE][@EXP] --b ...]``: per shared task,
  the main-score difference with its 95% bootstrap CI and a paired permutation p-value;
* ``python -m rag_eval.report failures <folder>``: the failure analysis of two-stage runs.

Over a folder that jobs are still writing into (a sweep on a cluster), the report shows what is done,
FAILED, running and missing, and the jobs themselves (their ``.runs/`` records), in one pass.

Exit 0 when done; 2 (one line on stderr) when the folder is missing or a run selector is wrong.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rag_eval.errors import ConfigError

SUBCOMMANDS = ("compare", "failures")


def _folder(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="an output_folder of rag_eval, or an mteb results folder")


def _parse(argv: list[str]) -> argparse.Namespace:
    if argv and argv[0] in SUBCOMMANDS:
        parser = argparse.ArgumentParser(prog=f"python -m rag_eval.report {argv[0]}")
        _folder(parser)
        if argv[0] == "compare":
            parser.description = ("For each task two runs share: the main-score difference B - A on their shared "
                                  "queries / pairs, its 95% paired bootstrap CI and a paired permutation p-value.")
            for opt, what in (("--a", "A"), ("--b", "B")):
                parser.add_argument(opt, metavar="MODEL[/STAGE][@EXP]",
                                    help=f"run {what}: a model name, optionally /stage1, /stage2 or /one-stage, "
                                         "and part of its experiment name; without --a/--b every two runs")
            parser.add_argument("--resamples", type=int, default=1000, help="bootstrap / permutation resamples")
            parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")
            parser.add_argument("-o", "--output", help="also write the markdown to this file")
        else:
            parser.description = ("Two-stage runs, per task: retriever misses, reranker inversions and "
                                  "improvements, the worst queries; written to <folder>/failure_analysis.md.")
        args = parser.parse_args(argv[1:])
        args.command = argv[0]
        return args
    parser = argparse.ArgumentParser(
        prog="python -m rag_eval.report",
        description="Collect every result file under FOLDER (rag_eval or plain mteb layout) and write "
                    "summary.csv, summary.md, averages.csv, report.html (offline, interactive) and PNG charts into it. "
                    "Subcommands: "
                    "'compare FOLDER [--a RUN --b RUN]' and 'failures FOLDER'.")
    _folder(parser)
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print the tables")
    args = parser.parse_args(argv)
    args.command = "report"
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else list(argv))
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"rag_eval.report: error: results folder '{args.folder}' not found", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)

    from rag_eval.report import collect_jobs, collect_results, print_jobs, print_report, status_line, write_reports

    if args.command == "compare":
        from rag_eval.report.compare_report import compare_folder

        try:
            text = compare_folder(collect_results(folder), args.a, args.b, args.resamples, args.seed)
        except ConfigError as exc:
            print(f"rag_eval.report: error: {exc}", file=sys.stderr)
            return 2
        print(text)
        if args.output:
            from rag_eval.results import atomic_write_text

            atomic_write_text(Path(args.output), text)
        return 0
    if args.command == "failures":
        from rag_eval.report.failure_analysis import FAILURES_MD, failures_markdown, task_failures
        from rag_eval.results import atomic_write_text

        text = failures_markdown(task_failures(collect_results(folder)))
        atomic_write_text(folder / FAILURES_MD, text)
        print(text)
        return 0

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
