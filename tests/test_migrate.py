"""Tests of lstm_utils.migrate: the migration checker's findings, its --fix, and its command line.

The inputs are ``tests/migrate_cases/``: one file per style of code (the source answer, the
TensorFlow text-generation tutorial, the Keras seq2seq example, d2l's ``begin_state``, a
notebook, other Keras 2 state code, and clean Keras 3 code with look-alikes). Each line with
an idiom ends with ``# expect: name[, name]``; precision and recall are computed over them.
Only one test runs Keras (the fixed script executed on Keras 3).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tokenize
from collections import Counter
from pathlib import Path

import pytest

from lstm_utils.migrate import Finding, check_source, fix_source, main
from lstm_utils.migration import idiom

CASES = Path(__file__).resolve().parent / "migrate_cases"
PY_CASES = sorted(path for path in CASES.glob("*.py") if path.name != "conftest.py")
NOTEBOOK = CASES / "keras2_notebook.ipynb"
Place = tuple[int | None, int, str]  # (cell, line, idiom name)


def expectations(source: str, cell: int | None = None) -> set[Place]:
    """The ``# expect: a, b`` comments of a piece of source, read with tokenize (magics blanked)."""
    lines = ["\n" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines(keepends=True)]
    found: set[Place] = set()
    for token in tokenize.generate_tokens(io.StringIO("".join(lines)).readline):
        if token.type == tokenize.COMMENT and token.string.startswith("# expect:"):
            for name in token.string.removeprefix("# expect:").split(","):
                found.add((cell, token.start[0], name.strip()))
    return found


def notebook_expectations(path: Path) -> set[Place]:
    found: set[Place] = set()
    for number, cell in enumerate(json.loads(path.read_text())["cells"], start=1):
        if cell["cell_type"] == "code" and not "".join(cell["source"]).startswith("%%bash"):
            found |= expectations("".join(cell["source"]), number)
    return found


def places(findings: list[Finding]) -> set[Place]:
    return {(f.cell, f.line, f.name) for f in findings}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def notebook_findings(path: Path, capsys: pytest.CaptureFixture[str]) -> list[Finding]:
    """The notebook's findings, read back from the command line's output."""
    status, out, _ = run_cli(capsys, str(path))
    assert status in (0, 1)
    found = []
    for line in out.splitlines():
        location, name = line.split(": ")[:2]
        _, cell, row, column = location.rsplit(":", 3)
        found.append(Finding(name, int(row), int(column), str(path), int(cell.removeprefix("cell "))))
    return found


# ---------------------------------------------------------------------------------------------
# What the checker finds


def test_every_case_declares_what_it_expects() -> None:
    assert len(PY_CASES) >= 6 and NOTEBOOK.exists()
    clean = CASES / "clean_keras3.py"
    assert not expectations(clean.read_text()), "the clean Keras 3 case must expect nothing"
    for path in PY_CASES:
        if path != clean:
            assert expectations(path.read_text()), f"{path.name} expects no finding"


@pytest.mark.parametrize("path", PY_CASES, ids=lambda p: p.name)
def test_each_case_gives_exactly_its_expected_findings(path: Path) -> None:
    source = path.read_text()
    found = places(check_source(source, path.name))
    expected = expectations(source)
    assert found - expected == set(), f"false positives in {path.name}"
    assert expected - found == set(), f"missed in {path.name}"


def test_the_notebook_case_gives_its_findings_at_cell_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    found = places(notebook_findings(NOTEBOOK, capsys))
    assert found == notebook_expectations(NOTEBOOK)
    assert (3, 3, "model_reset_states") in found  # cell 3 (markdown counted), line 3 of the cell
    assert (6, 2, "backend_get_value") in found  # after a %%time line, which keeps its line number


def test_precision_and_recall_over_all_cases(capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    total = Counter[str]()
    for path in [*PY_CASES, NOTEBOOK]:
        if path.suffix == ".ipynb":
            found, expected = places(notebook_findings(path, capsys)), notebook_expectations(path)
        else:
            found, expected = places(check_source(path.read_text(), path.name)), expectations(path.read_text())
        counts = Counter(tp=len(found & expected), fp=len(found - expected), fn=len(expected - found))
        total.update(counts)
        rows.append(f"| {path.name} | {len(expected)} | {counts['tp']} | {counts['fp']} | {counts['fn']} |")
    precision = total["tp"] / (total["tp"] + total["fp"])
    recall = total["tp"] / (total["tp"] + total["fn"])
    with capsys.disabled():
        print("\n| case | expected | found and expected | false positives | missed |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))
        print(f"precision {precision:.3f}, recall {recall:.3f} over {total['tp'] + total['fn']} expected findings")
    assert total["tp"] >= 25
    assert precision == 1.0 and recall == 1.0


def test_every_detectable_idiom_of_the_registry_is_in_some_case(capsys: pytest.CaptureFixture[str]) -> None:
    from lstm_utils.migration import IDIOMS

    seen = {name for path in PY_CASES for _, _, name in expectations(path.read_text())}
    seen |= {name for _, _, name in notebook_expectations(NOTEBOOK)}
    assert {entry.name for entry in IDIOMS if entry.detectable} <= seen


def test_a_finding_prints_the_registry_text() -> None:
    (finding,) = check_source("import keras.backend as K\nK.set_value(v, 1)\n", "demo.py")
    entry = idiom("backend_set_value")
    assert str(finding) == f"demo.py:2:1: backend_set_value: {entry.on_keras3} -> {entry.replacement}"
    assert finding.fixable and finding.cell is None


@pytest.mark.parametrize(
    "code",
    [
        "import tf_keras\ntf_keras.backend.get_value(v)\n",  # Keras 2 on purpose
        "import numpy as K\nK.variable(1)\n",  # K is not a Keras backend
        "def f(K):\n    return K.get_value(v)\n",  # a parameter: unknown
        "lstm = keras.layers.LSTM(2)\nlstm.reset_states()\n",  # a layer's reset_states is Keras 3 code
        "class Env:\n    def __init__(self):\n        self.states = [0]\n\nenv = Env()\nenv.states[0] = 1\n",
        "image.save('picture.png')\n",  # not a model
        "model.predict(x)\n",  # no stateful layer in the file
        "model.save('m.keras')\nmodel.save('m.h5')\n",  # .h5 of a stateless model is fine
        "import tensorflow as tf\ntf.compat.v1.nn.dynamic_rnn(cell, x, time_major=True)\n",  # not a Keras layer
        "import keras\nx = keras.Input((None, 3))\ny = keras.layers.LSTM(2, unroll=True)(keras.Input((5, 3)))\n",
        "def make(batch_input_shape):\n    pass\n\nmake(batch_input_shape=(1, 2))\n",
        "import lstm_utils\nlstm_utils.reset_states(model)\nlstm_utils.get_initial_state(x)\n",  # module functions
        "import numpy as np\nnp.save('array', a)\n",
    ],
)
def test_look_alikes_give_no_finding(code: str) -> None:
    assert check_source(code) == []


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("import tensorflow as tf\nK = tf.keras.backend\nK.get_value(v)\n", "backend_get_value"),  # an alias
        ("from tensorflow.keras.backend import set_value as sv\nsv(v, 1)\n", "backend_set_value"),
        ("from keras import backend\nbackend.variable(1)\n", "backend_variable"),
        ("for model in models:\n    model.reset_states()\n", "model_reset_states"),  # named like a model
        ("import keras\nm = keras.Sequential()\nm.reset_states()\n", "model_reset_states"),  # bound to one
        ("import keras\nkeras.saving.save_model(m, 'exported')\n", "save_savedmodel_dir"),
        ("model.save(f'{folder}/s2s')\n", "save_savedmodel_dir"),
        (
            "import keras\nl = keras.layers.LSTM(2, stateful=True)\nmodel.save('m', save_format='tf')\n",
            "save_savedmodel_dir",
        ),
        ("from keras.layers import LSTM\nLSTM(2, unroll=True, input_shape=(None, 3))\n", "unroll_free_time_axis"),
        (
            "import keras\nm = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(2, unroll=True)])\n",
            "unroll_free_time_axis",
        ),
        ("import keras\nclass M(keras.Model):\n    pass\n\nm = M()\nm.reset_states()\n", "model_reset_states"),
    ],
)
def test_what_the_heuristics_find(code: str, name: str) -> None:
    assert [f.name for f in check_source(code)] == [name]


def test_a_file_without_any_trigger_is_still_parsed() -> None:
    assert check_source("x = 1\n") == []
    with pytest.raises(ValueError, match="cannot parse: line 1"):
        check_source("x = = 1\n")


def test_check_source_refuses_bad_input() -> None:
    with pytest.raises(TypeError, match="source must be a str of Python code, got bytes"):
        check_source(b"x = 1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="filename must be a str, got int"):
        check_source("x = 1", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"broken.py: cannot parse: line 2, column \d+"):
        check_source("x = 1\ndef (:\n", "broken.py")
    with pytest.raises(TypeError, match="source must be a str"):
        fix_source(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot parse"):
        fix_source("model.reset_states(\n")


# ---------------------------------------------------------------------------------------------
# --fix


def comments(source: str) -> Counter[str]:
    return Counter(
        token.string
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    )


@pytest.mark.parametrize("path", PY_CASES, ids=lambda p: p.name)
def test_fix_keeps_comments_and_touches_only_the_fixable_lines(path: Path) -> None:
    source = path.read_text()
    fixed = fix_source(source)
    assert comments(source) <= comments(fixed), "a comment was lost"
    fixable_lines = {f.line for f in check_source(source) if f.fixable}
    old, new = source.splitlines(), fixed.splitlines()
    follows = {number for number, line in enumerate(old, 1) if "load_weights(" in line}  # follows save_weights
    import difflib

    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            assert set(range(i1 + 1, i2 + 1)) <= fixable_lines | follows, f"{path.name}: lines {i1 + 1}-{i2} changed"
    if fixable_lines:
        assert fixed != source
    else:
        assert fixed == source


@pytest.mark.parametrize("path", PY_CASES, ids=lambda p: p.name)
def test_after_fix_only_the_non_fixable_idioms_remain(path: Path) -> None:
    source = path.read_text()
    expected = Counter(name for _, _, name in expectations(source) if not idiom(name).fixable)
    fixed = fix_source(source)
    assert Counter(f.name for f in check_source(fixed)) == expected
    assert fix_source(fixed) == fixed  # a second --fix changes nothing


def test_fix_adds_import_keras_only_where_needed() -> None:
    assert fix_source("import keras\nh = keras.backend.get_value(v)\n") == (
        "import keras\nh = keras.ops.convert_to_numpy(v)\n"
    )
    assert fix_source("from tensorflow import keras\nkeras.backend.set_value(v, 2)\n") == (
        "from tensorflow import keras\nv.assign(2)\n"
    )
    fixed = fix_source('"""Doc."""\nfrom keras import backend as K\nv = K.variable(a, "float32", name="h")\n')
    expected = 'from keras import backend as K\nimport keras\nv = keras.Variable(a, dtype="float32", name="h")\n'
    assert fixed == '"""Doc."""\n' + expected
    # keras bound to Keras 2: the replacement would need Keras 3's, so it is left reported
    source = "import tf_keras as keras\nimport tensorflow as tf\ntf.keras.backend.get_value(v)\n"
    assert fix_source(source) == source
    assert [f.fixable for f in check_source(source)] == [False]


def test_fix_puts_what_it_adds_before_the_first_use() -> None:
    source = (
        'import os\nos.environ["KERAS_BACKEND"] = "jax"\nimport tensorflow as tf\n'
        "h = tf.keras.backend.get_value(v)\nimport numpy as np\nmodel.reset_states()\n"
    )
    fixed = fix_source(source).splitlines()
    assert fixed[:4] == ["import os", 'os.environ["KERAS_BACKEND"] = "jax"', "import tensorflow as tf", "import keras"]
    assert fixed.index("def reset_rnn_states(model):") < fixed.index("h = keras.ops.convert_to_numpy(v)")
    assert fixed[-1] == "reset_rnn_states(model)"
    assert fix_source('"""Doc."""\nmodel.reset_states()\n').startswith('"""Doc."""\n\n\ndef reset_rnn_states(model):')
    assert fix_source("# note\nmodel.reset_states()\n").startswith("# note\n\n\ndef reset_rnn_states(model):")
    assert fix_source("model.reset_states()\n").startswith("def reset_rnn_states(model):")


def test_fix_keeps_line_endings_and_a_byte_order_mark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(b"import keras.backend as K\r\nh = K.get_value(v)\r\nmodel.reset_states()\r\n")
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbfmodel.reset_states()  # \xc3\xa9t\xc3\xa9\n")
    assert run_cli(capsys, "--fix", str(crlf), str(bom))[0] == 0
    lines = crlf.read_bytes().split(b"\n")
    assert len(lines) > 10 and all(line.endswith(b"\r") for line in lines[:-1]) and lines[-1] == b""
    assert bom.read_bytes().startswith(b"\xef\xbb\xbfdef reset_rnn_states(model):")
    assert bom.read_bytes().endswith("reset_rnn_states(model)  # été\n".encode())


def test_fix_of_reset_states_with_states() -> None:
    assert fix_source("lstm.reset_states(states=[h, c])  # start\n") == (
        "lstm.states[0].assign(h); lstm.states[1].assign(c)  # start\n"
    )
    assert fix_source("gru.reset_states(None)\n") == "gru.reset_states()\n"
    assert fix_source("lstm.reset_states(states=new)\n") == (
        "for _variable, _value in zip(lstm.states, new, strict=True): _variable.assign(_value)\n"
    )
    inside = "x = [lstm.reset_states(states=[h, c])]\n"  # not a statement of its own: reported, not fixed
    assert fix_source(inside) == inside and check_source(inside)[0].name == "reset_states_with_states"


KERAS2_SCRIPT = """\
import numpy as np
import tensorflow as tf
from tensorflow.keras import backend as K
from tensorflow.keras.layers import CuDNNLSTM

B, T, F, U = 2, 5, 3, 4
x = np.random.RandomState(0).randn(B, T, F).astype("float32")

first = tf.keras.layers.LSTM(U, stateful=True, return_sequences=True)
inner = tf.keras.Sequential([tf.keras.Input(batch_shape=(B, T, F)), first])
inputs = tf.keras.Input(batch_shape=(B, T, F))
both = tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(U, stateful=True))
model = tf.keras.Model(inputs, both(inner(inputs)))
model(x)
before = [float(np.abs(K.get_value(s)).sum()) for s in inner.layers[0].states + list(both.states)]
model.reset_states()  # every stateful layer, nested and Bidirectional
after = [float(np.abs(K.get_value(s)).sum()) for s in inner.layers[0].states + list(both.states)]

lstm = inner.layers[0]
h0 = np.full((B, U), 0.5, "float32")
lstm.reset_states(states=[h0, np.zeros((B, U), "float32")])
set_h = K.get_value(lstm.states[0])
K.set_value(lstm.states[1], np.ones((B, U), "float32"))
set_c = K.get_value(lstm.states[1])
v = K.variable(h0)

cell = tf.keras.layers.LSTMCell(U)
zeros = cell.get_initial_state(inputs=x[:, 0])
typed = cell.get_initial_state(batch_size=B, dtype=tf.float32)
layer_zeros = tf.keras.layers.GRU(U).get_initial_state(x)
fast = CuDNNLSTM(U)
fast_out = fast(x)
"""


def test_the_fixed_script_runs_on_keras_3() -> None:
    import keras
    import numpy as np

    with pytest.raises((AttributeError, ImportError, TypeError)):  # the Keras 2 script fails on Keras 3
        exec(compile(KERAS2_SCRIPT, "keras2.py", "exec"), {})
    fixed = fix_source(KERAS2_SCRIPT)
    assert [f.name for f in check_source(fixed)] == []
    namespace: dict[str, object] = {}
    exec(compile(fixed, "fixed.py", "exec"), namespace)
    assert all(total > 0 for total in namespace["before"]) and len(namespace["before"]) == 6  # type: ignore[arg-type]
    assert namespace["after"] == [0.0] * 6
    assert np.array_equal(namespace["set_h"], np.full((2, 4), 0.5)) and np.array_equal(
        namespace["set_c"], np.ones((2, 4))
    )
    assert isinstance(namespace["v"], keras.Variable)
    assert [tuple(z.shape) for z in namespace["zeros"]] == [(2, 4), (2, 4)]  # type: ignore[attr-defined]
    assert [tuple(z.shape) for z in namespace["typed"]] == [(2, 4), (2, 4)]  # type: ignore[attr-defined]
    assert [tuple(z.shape) for z in namespace["layer_zeros"]] == [(2, 4)]  # type: ignore[attr-defined]
    assert type(namespace["fast"]).__name__ == "LSTM" and tuple(namespace["fast_out"].shape) == (2, 4)  # type: ignore[attr-defined]


def test_the_fixed_text_generation_case_runs_on_keras_3() -> None:
    import tensorflow as tf

    source = (CASES / "tf_text_generation.py").read_text()
    with pytest.raises(tf.errors.InvalidArgumentError, match="Shapes of all inputs must match"):  # get_initial_state(x)
        exec(compile(source, "tf_text_generation.py", "exec"), {"__name__": "case"})
    namespace: dict[str, object] = {"__name__": "case"}
    exec(compile(fix_source(source), "fixed.py", "exec"), namespace)
    assert tuple(namespace["logits"].shape) == (2, 7, 65)  # type: ignore[attr-defined]
    assert tuple(namespace["states"].shape) == (2, 32)  # type: ignore[attr-defined]


def test_the_reset_helper_does_nothing_on_a_model_without_state() -> None:
    import keras
    import numpy as np

    fixed = fix_source("model = keras.Sequential([keras.Input((3, 1)), keras.layers.LSTM(2)])\nmodel.reset_states()\n")
    exec(compile(fixed, "fixed.py", "exec"), {"keras": keras, "np": np})  # Keras 2 did nothing here; neither does it


# ---------------------------------------------------------------------------------------------
# The command line


def test_cli_exit_status_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n")
    assert run_cli(capsys, str(clean)) == (0, "", "")
    status, out, _ = run_cli(capsys, str(CASES / "keras_seq2seq.py"))
    assert status == 1 and out.count("\n") == 2 and "keras_seq2seq.py:22:1: save_savedmodel_dir: " in out


def test_cli_recurses_into_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "a.py").write_text("model.reset_states()\n")
    (tmp_path / "deep" / "notes.txt").write_text("model.reset_states()\n")
    NOTEBOOK_COPY = tmp_path / "nb.ipynb"
    NOTEBOOK_COPY.write_bytes(NOTEBOOK.read_bytes())
    status, out, _ = run_cli(capsys, str(tmp_path))
    assert status == 1
    assert f"{tmp_path / 'deep' / 'er' / 'a.py'}:1:1: model_reset_states" in out
    assert f"{NOTEBOOK_COPY}:cell 3:3:1: model_reset_states" in out
    assert "notes.txt" not in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.py", "missing.py: no such file or directory"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no .py files or .ipynb notebooks in this directory"),
        (lambda d: (d / "b.py").write_bytes(b"\x00\x01\x02binary") and d / "b.py", "a binary file"),
        (lambda d: (d / "latin.py").write_bytes(b"x = '\xe9'\n") and d / "latin.py", "not UTF-8 text"),
        (
            lambda d: (d / "nb.ipynb").write_text('{"cells": [') and d / "nb.ipynb",
            "not a notebook: broken JSON at line 1",
        ),
        (
            lambda d: (d / "nb2.ipynb").write_text("[1, 2]") and d / "nb2.ipynb",
            "expected a JSON object with a 'cells' list",
        ),
        (lambda d: (d / "s.py").write_text("x = 1\ndef (:\n") and d / "s.py", "s.py: cannot parse: line 2"),
        (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", "expected a .py file, a .ipynb notebook"),
    ],
)
def test_cli_bad_input_is_a_usage_error_and_the_rest_is_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    bad = make(tmp_path)  # type: ignore[operator]
    good = tmp_path / "good.py"
    good.write_text("model.reset_states()\n")
    status, out, err = run_cli(capsys, str(bad), str(good))
    assert status == 2
    assert message in err and err.startswith("lstm-migrate: error: ")
    assert "good.py:1:1: model_reset_states" in out


def test_cli_notebook_syntax_error_names_the_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = json.loads(NOTEBOOK.read_text())
    notebook["cells"][5]["source"] = ["x = 1\n", "y = (\n"]
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(notebook))
    status, _, err = run_cli(capsys, str(path))
    assert status == 2 and "broken.ipynb: cannot parse: cell 6, line" in err


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: lstm-migrate" in capsys.readouterr().err
    assert main(["--fix", "--diff", "x.py"]) == 2


def test_fix_rewrites_in_place_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "seq.py"
    path.write_text((CASES / "keras2_stateful.py").read_text())
    status, out, _ = run_cli(capsys, "--fix", str(path))
    assert status == 1  # non-fixable findings remain
    fixed = path.read_text()
    assert fixed == fix_source((CASES / "keras2_stateful.py").read_text())
    assert f"fixed: {path}:15:5: backend_get_value" in out
    assert "left: " in out and "batch_input_shape" in out
    assert not [p for p in tmp_path.iterdir() if p.name != "seq.py"], "a temporary file was left behind"


def test_fix_with_everything_fixed_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.py"
    path.write_text("model.reset_states()\n")
    assert run_cli(capsys, "--fix", str(path))[0] == 0
    assert run_cli(capsys, str(path)) == (0, "", "")


def test_fix_never_writes_a_file_that_does_not_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "unfixable.py"
    path.write_text("model.save('s2s')\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    status, out, _ = run_cli(capsys, "--fix", str(path))
    assert status == 1 and "left: " in out and "fixed:" not in out
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_diff_shows_the_change_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.py"
    path.write_text("import keras.backend as K\nh = K.get_value(v)\n")
    status, out, _ = run_cli(capsys, "--diff", str(path))
    assert status == 1
    assert "\n-h = K.get_value(v)\n+import keras\n+h = keras.ops.convert_to_numpy(v)\n" in out
    assert path.read_text() == "import keras.backend as K\nh = K.get_value(v)\n"


def test_fix_on_a_read_only_file_is_refused_and_leaves_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ro.py"
    path.write_text("model.reset_states()\n")
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        status, _, err = run_cli(capsys, "--fix", str(path))
        assert status == 2 and "ro.py: cannot fix: the file is read-only (left unchanged)" in err
        assert path.read_text() == "model.reset_states()\n"
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_fix_of_a_notebook_changes_only_the_cell_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_bytes(NOTEBOOK.read_bytes())
    status, out, _ = run_cli(capsys, "--fix", str(path))
    assert status == 0 and out.count("fixed: ") == 2
    before, after = json.loads(NOTEBOOK.read_text()), json.loads(path.read_text())
    assert {k: v for k, v in before.items() if k != "cells"} == {k: v for k, v in after.items() if k != "cells"}
    assert len(before["cells"]) == len(after["cells"])
    for old, new in zip(before["cells"], after["cells"], strict=True):
        assert {k: v for k, v in old.items() if k != "source"} == {k: v for k, v in new.items() if k != "source"}
    sources = ["".join(cell["source"]) for cell in after["cells"]]
    assert sources[1].startswith("%matplotlib inline\n") and "!pip list | grep keras\n" in sources[1]
    assert "def reset_rnn_states(model):" in sources[1] and "import keras\n" in sources[1]
    assert sources[2].endswith("reset_rnn_states(model)  # expect: model_reset_states\n")
    assert sources[3] == "%%bash\necho model.reset_states()\n"  # a shell cell is not Python: untouched
    assert sources[5].startswith("%%time\nh = keras.ops.convert_to_numpy(lstm.states[0])")
    assert sources[5].endswith("%time y = model.predict(np.zeros((2, 5, 3)), batch_size=2)\nprint(h.shape)")
    assert [old == new for old, new in zip(before["cells"], after["cells"], strict=True)] == [
        True, False, False, True, True, False
    ]  # fmt: skip
    # written in the file's own JSON layout: only the changed source lines differ
    old_lines, new_lines = NOTEBOOK.read_text().splitlines(), path.read_text().splitlines()
    assert [line for line in old_lines if line not in new_lines] == [
        line for line in old_lines if "model.reset_states()  # expect" in line or "get_value" in line
    ]
