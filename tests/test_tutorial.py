"""docs/tutorial.ipynb runs top to bottom (with a few steps per image), so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbclient  # the dev extra: pip install -e ".[dev]"
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


@pytest.mark.slow
def test_tutorial_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("GENVIZ_TUTORIAL_STEPS", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError with the cell and traceback on any error

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    # every visualize() cell shows its results as an image (Results._repr_png_ / _repr_html_)
    shown = [c for c in code if "visualize(" in c.source and c.source.strip().split("\n")[-1].isidentifier()]
    assert len(shown) == 4
    for c in shown:
        data = [o["data"] for o in c.outputs if "data" in o]
        assert data and "image/png" in data[-1] and "<img" in data[-1]["text/html"]
    # the evaluation printed one line per image and method; the audit and the save wrote files
    evaluation = next(c for c in code if "score(evaluator" in c.source)
    text = "".join(o.get("text", "") for o in evaluation.outputs)
    assert text.count("lite1 rank") == 4
    assert (tmp_path / "outputs/tutorial/audit/audit.html").is_file()
    assert (tmp_path / "outputs/tutorial/classes/results.json").is_file()
    assert len(list((tmp_path / "outputs/tutorial/classes/images").glob("*.png"))) == 2
