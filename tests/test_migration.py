"""Tests of lstm_utils.migration: the idiom registry and its executable checks (TensorFlow backend)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lstm_utils.migration import (
    IDIOMS,
    KINDS,
    Idiom,
    IdiomResult,
    idiom,
    idiom_names,
    results_table,
    run_all,
    run_idiom,
)

# The names helper B2's checker (lstm_utils.migrate) relies on: /work/handoff/IDIOMS.md.
SHARED_NAMES = [
    "batch_input_shape",
    "layer_batch_size",
    "model_reset_states",
    "reset_states_with_states",
    "backend_variable",
    "backend_set_value",
    "backend_get_value",
    "state_list_replacement",
    "cell_get_initial_state_inputs",
    "get_initial_state_dtype",
    "layer_get_initial_state_tensor",
    "predict_default_batch_size",
    "partial_last_batch",
    "cudnn_lstm",
    "lstm_implementation",
    "time_major",
    "unroll_free_time_axis",
    "return_state_tuple",
    "bidirectional_merge_none",
    "input_batch_shape",
    "save_h5_state",
    "save_savedmodel_dir",
    "load_keras2_h5",
]
TEXT_FIELDS = ("name", "title", "keras2", "on_keras3", "replacement")


# ---------------------------------------------------------------------------- the registry


def test_registry_is_well_formed() -> None:
    names = [entry.name for entry in IDIOMS]
    assert len(names) == len(set(names)), "idiom names must be unique"
    assert idiom_names() == tuple(names)
    for entry in IDIOMS:
        assert isinstance(entry, Idiom)
        for field in TEXT_FIELDS:
            value = getattr(entry, field)
            assert isinstance(value, str) and value.strip() == value and value, (entry.name, field)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", entry.name), entry.name
        assert "\n" not in entry.on_keras3, entry.name
        assert entry.kind in KINDS, entry.name
        assert entry.kind_on_tf in ("", *KINDS), entry.name
        assert entry.tf_kind in KINDS
        assert isinstance(entry.detectable, bool) and isinstance(entry.fixable, bool), entry.name
        assert entry.detectable or not entry.fixable, f"{entry.name}: fixable implies detectable"
        assert entry.keras2_works in (True, False, None), entry.name
        assert isinstance(entry.chapter, int) and 0 <= entry.chapter <= 13, entry.name


def test_registry_holds_every_shared_name() -> None:
    missing = [name for name in SHARED_NAMES if name not in idiom_names()]
    assert not missing
    assert len(idiom_names()) > len(SHARED_NAMES)  # plus the chapters' idioms


def test_kinds_of_the_shared_names() -> None:
    # What IDIOMS.md promises B2, so that a change here is a change of the contract.
    assert idiom("batch_input_shape").kind == "error"
    assert idiom("state_list_replacement").kind == "silent"
    assert idiom("partial_last_batch").kind == "silent" and not idiom("partial_last_batch").detectable
    assert idiom("lstm_implementation").kind == "unchanged"
    assert idiom("backend_variable").kind == "error" and idiom("backend_variable").tf_kind == "unchanged"
    assert idiom("model_reset_states").fixable and idiom("cudnn_lstm").fixable


def test_idiom_lookup() -> None:
    for entry in IDIOMS:
        assert idiom(entry.name) is entry
    with pytest.raises(dataclasses.FrozenInstanceError):
        idiom("time_major").kind = "silent"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["nope", "", "Time_Major", " time_major"])
def test_idiom_unknown_name(bad: str) -> None:
    with pytest.raises(ValueError, match="no idiom named") as caught:
        idiom(bad)
    assert "batch_input_shape" in str(caught.value) and "save_weights_h5" in str(caught.value)


@pytest.mark.parametrize("bad", [None, 3, b"time_major", ["time_major"], IDIOMS[0]])
def test_idiom_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError, match="name must be a str"):
        idiom(bad)  # type: ignore[arg-type]


def test_import_does_not_import_keras() -> None:
    code = (
        "import sys, lstm_utils.migration as m; assert len(m.IDIOMS) > 20; "
        "print(sorted({k.split('.')[0] for k in sys.modules} & {'tensorflow', 'keras', 'tf_keras', 'jax', 'torch'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- the checks


@pytest.fixture(scope="module")
def temporary_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh folder that tempfile uses while the checks run, to see that they clean up."""
    root = tmp_path_factory.mktemp("migration_tmp")
    saved = tempfile.tempdir
    tempfile.tempdir = str(root)
    try:
        yield root
    finally:
        tempfile.tempdir = saved


@pytest.fixture(scope="module")
def results(temporary_root: Path) -> tuple[tuple[IdiomResult, ...], float]:
    start = time.process_time()
    found = run_all()
    return found, time.process_time() - start  # CPU seconds, all threads (reported, not asserted)


def test_run_all_covers_every_idiom(results: tuple[tuple[IdiomResult, ...], float]) -> None:
    found, _ = results
    assert [result.name for result in found] == list(idiom_names())
    assert all(isinstance(result, IdiomResult) for result in found)


def test_every_idiom_runs_as_documented(results: tuple[tuple[IdiomResult, ...], float]) -> None:
    found, _ = results
    wrong = {r.name: (r.keras2, r.keras3, r.replacement) for r in found if not r.as_documented}
    assert not wrong


def test_outcomes_fit_the_kinds(results: tuple[tuple[IdiomResult, ...], float]) -> None:
    found, _ = results
    for result in found:
        entry = idiom(result.name)
        assert result.replacement.startswith("works: "), result
        assert result.keras3 in entry.on_keras3, result
        if entry.tf_kind == "error":
            assert re.match(r"[A-Z]\w*(Error|Exception): \S", result.keras3), result
        elif entry.tf_kind == "silent":
            assert result.keras3.startswith("runs: "), result
        else:
            assert result.keras3.startswith("works: "), result
        if entry.keras2_works:
            assert result.keras2.startswith(("works: ", "runs: ")), result


def test_measured_facts(results: tuple[tuple[IdiomResult, ...], float]) -> None:
    by_name = {result.name: result for result in results[0]}
    assert by_name["batch_input_shape"].keras2 == "works: the 2nd call continues"
    assert by_name["batch_input_shape"].replacement == "works: matches Keras 2"
    assert by_name["state_list_replacement"].keras2 == "runs: the new variable is ignored"
    assert by_name["state_list_replacement"].replacement == "works: the new values are used"
    assert by_name["save_h5_state"].keras3.startswith("runs: the state is not saved")
    assert by_name["save_h5_state"].replacement == "works: the state is restored"
    assert by_name["stateful_initial_state"].keras2 == "works: the 2nd call continues"
    assert by_name["masking_initial_state"].replacement == "works: matches Keras 2"
    assert by_name["load_keras2_h5"].replacement == "works: stateful=True, predictions match"
    assert by_name["partial_last_batch"].keras2 == by_name["partial_last_batch"].keras3


def test_outcomes_are_stable(results: tuple[tuple[IdiomResult, ...], float]) -> None:
    by_name = {result.name: result for result in results[0]}
    for result in by_name.values():
        for text in (result.keras2, result.keras3, result.replacement):
            assert "\n" not in text and "\x1b" not in text, text
            assert not re.search(r"0x[0-9a-f]{4,}|\b(lstm|sequential|model)_\d+\b", text), text


def test_outcomes_repeat_and_stay_off_the_screen(
    results: tuple[tuple[IdiomResult, ...], float], capfd: pytest.CaptureFixture[str]
) -> None:
    # Again, with other automatic layer names: the same strings. Keras warns about the legacy
    # HDF5 format in save_h5_state (the result says so), but nothing reaches the screen.
    by_name = {result.name: result for result in results[0]}
    for name in ("batch_input_shape", "layer_get_initial_state_tensor", "save_h5_state"):
        assert run_idiom(name) == by_name[name]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_checks_clean_up_their_files(results: tuple[tuple[IdiomResult, ...], float], temporary_root: Path) -> None:
    # TensorFlow's autograph keeps the modules it generates there (not the checks' files).
    left = [path.name for path in temporary_root.iterdir() if not path.name.startswith("__autograph_generated_file")]
    assert left == []


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (None, TypeError, "name must be a str"),
        (7, TypeError, "name must be a str"),
        ("reset_state", ValueError, "no idiom named 'reset_state'"),
        ("", ValueError, "no idiom named"),
    ],
)
def test_run_idiom_bad_input(bad: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        run_idiom(bad)  # type: ignore[arg-type]


def test_as_documented_can_be_false() -> None:
    # The agreement rule itself, on made-up outcomes: each part can make it fail.
    from lstm_utils.migration import _agrees

    entry = idiom("time_major")
    error = "ValueError: Unrecognized keyword arguments passed to LSTM: {'time_major': True}"
    assert _agrees(entry, "works: matches the reference", error, "works: matches Keras 2")
    assert not _agrees(entry, "ValueError: x", error, "works: matches Keras 2")  # Keras 2 failed
    assert not _agrees(entry, "works: x", "works: matches the reference", "works: y")  # no error on Keras 3
    assert not _agrees(entry, "works: x", "ValueError: another message", "works: y")  # not the documented error
    assert not _agrees(entry, "works: x", error, "TypeError: y")  # the replacement failed
    silent = idiom("state_list_replacement")
    assert not _agrees(silent, "runs: x", "works: the new values are used", "works: y")


def test_clean_removes_volatile_parts() -> None:
    from lstm_utils.migration import _clean

    assert _clean("Exception encountered when calling LSTM.call().\n\n\x1b[1mBad size 3.\x1b[0m\nmore") == "Bad size 3."
    assert _clean("layer 'lstm_12' of <Sequential at 0x7f3a2b1c>") == "layer 'lstm' of <Sequential at 0x...>"
    graph = 'Graph execution error:\n\nDetected at node x\n  File "a.py", line 1\n'
    graph += "Incompatible shapes: [4,16]\n [[{{node y}}]]"
    assert _clean(graph) == "Incompatible shapes: [4,16]"
    assert _clean(f"Bad filepath={os.path.join(tempfile.gettempdir(), 'tmpab12/m.h5')}") == (
        "Bad filepath=<temporary path>"
    )


# ---------------------------------------------------------------------------- the table


def test_results_table(results: tuple[tuple[IdiomResult, ...], float]) -> None:
    found, _ = results
    table = results_table(found)
    assert len(table) == len(IDIOMS)
    markdown = table.markdown()
    assert markdown.count("\n") == len(IDIOMS) + 1
    entry = idiom("batch_input_shape")
    assert table.result(entry.title, "Keras 2") == "works: the 2nd call continues"
    assert table.result(entry.title, "Keras 3") == found[0].keras3
    assert "not as documented" not in markdown
    flagged = dataclasses.replace(found[0], as_documented=False)
    assert "(not as documented)" in results_table([flagged]).markdown()


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ("batch_input_shape", TypeError, "sequence of IdiomResult"),
        (None, TypeError, "sequence of IdiomResult"),
        ([1, 2], TypeError, "IdiomResult objects only, got int"),
        ([], ValueError, "results is empty"),
    ],
)
def test_results_table_bad_input(bad: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        results_table(bad)  # type: ignore[arg-type]


def test_results_table_bad_results() -> None:
    one = IdiomResult("time_major", "works: a", "ValueError: b", "works: c", True)
    with pytest.raises(ValueError, match="repeated: time_major"):
        results_table([one, one])
    with pytest.raises(ValueError, match="no idiom named 'nope'"):
        results_table([dataclasses.replace(one, name="nope")])


def test_clean_keeps_the_first_sentence() -> None:
    from lstm_utils.migration import _clean

    assert _clean("The filename must end in `.weights.h5`. Received: filepath=x.h5") == (
        "The filename must end in `.weights.h5`."
    )
    assert _clean("Shapes must match: values[0].shape = [2,5,3] != [] [Op:Pack] name: ") == (
        "Shapes must match: values[0].shape = [2,5,3] != []"
    )
    assert _clean("Could not find device for node: {{node CudnnRNNV3}} = CudnnRNNV3[T=DT_FLOAT, seed=0]") == (
        "Could not find device for node: CudnnRNNV3"
    )


def test_an_unmatched_result_is_not_documented() -> None:
    from lstm_utils.migration import _agrees

    entry = idiom("batch_input_shape")
    error = "ValueError: Unrecognized keyword arguments passed to LSTM: {'batch_input_shape': (2, 5, 3)}"
    assert _agrees(entry, "works: the 2nd call continues", error, "works: matches Keras 2")
    unmatched = "works: the 2nd call matches none of: continues, starts from zeros"
    assert not _agrees(entry, unmatched, error, "works: matches Keras 2")
    assert not _agrees(entry, "works: the 2nd call continues", error, unmatched)
