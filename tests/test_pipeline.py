"""The pipeline runs real notebooks with a real kernel into run folders, and records what happened."""

import json

import nbformat
import pytest

from mlhelpers.core.artifacts import STEPS
from mlhelpers.core.environment import git_state, package_versions
from mlhelpers.core.params import Params, ParamsError
from mlhelpers.pipeline import check_step_inputs, new_run_dir, parse_steps, run_pipeline
from mlhelpers.runs import list_runs


def test_steps_are_parsed_in_pipeline_order():
    assert parse_steps(None) == ["explore", "baseline", "export"]
    assert parse_steps("export, explore") == ["explore", "export"]
    with pytest.raises(ParamsError, match="unknown step trian; choose from explore, baseline, export"):
        parse_steps("explore,trian")


def test_a_later_step_alone_needs_an_earlier_run(tmp_path):
    with pytest.raises(ParamsError, match="needs the artifacts of explore, baseline"):
        check_step_inputs(["export"], None)
    with pytest.raises(ParamsError, match="has no explore/ folder"):
        check_step_inputs(["baseline"], tmp_path)
    (tmp_path / "explore").mkdir()
    check_step_inputs(["baseline"], tmp_path)


def test_run_folders_are_never_reused(tmp_path):
    first, second = new_run_dir(tmp_path, "demo"), new_run_dir(tmp_path, "demo")
    assert first != second and first.parent == second.parent == tmp_path / "demo"


@pytest.mark.slow
def test_a_successful_run_writes_notebooks_artifacts_and_manifest(tmp_path, tiny_notebooks):
    notebooks = tiny_notebooks(tmp_path / "nb")
    run_dir = new_run_dir(tmp_path / "runs", "demo")
    result = run_pipeline(Params(cv_folds=3), list(STEPS), run_dir, progress=False, notebooks_dir=notebooks)

    assert result.succeeded
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["status"] == "succeeded"
    assert manifest["params"]["cv_folds"] == 3 and manifest["seed"] == 42
    assert len(manifest["data"]["sha256"]) == 64
    assert manifest["versions"]["scikit-learn"] == package_versions()["scikit-learn"]
    assert set(manifest["git"]) == {"commit", "dirty"}
    assert {step: info["status"] for step, info in manifest["steps"].items()} == dict.fromkeys(STEPS, "succeeded")
    assert all(info["seconds"] > 0 for info in manifest["steps"].values())
    for step, spec in STEPS.items():
        assert (run_dir / spec.notebook).exists()
        # the run folder, not the notebook's default, received the step's output
        assert (run_dir / spec.folder / "done.txt").read_text() == ("42" if step == "explore" else "3")


@pytest.mark.slow
def test_a_failed_step_stops_the_run_and_keeps_the_failing_notebook(tmp_path, tiny_notebooks):
    notebooks = tiny_notebooks(tmp_path / "nb", failing_step="baseline")
    run_dir = new_run_dir(tmp_path / "runs", "demo")
    result = run_pipeline(Params(), list(STEPS), run_dir, progress=False, notebooks_dir=notebooks)

    assert not result.succeeded
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert [manifest["steps"][s]["status"] for s in STEPS] == ["succeeded", "failed", "pending"]
    # parameters [1], papermill's injected parameters [2], the failing cell [3]
    assert manifest["error"]["step"] == "baseline" and manifest["error"]["cell"] == 3
    assert manifest["error"]["message"].startswith("ValueError: boom in ")
    executed = nbformat.read(run_dir / STEPS["baseline"].notebook, as_version=4)
    assert any(output.get("ename") == "ValueError" for cell in executed.cells for output in cell.get("outputs", []))
    assert not (run_dir / STEPS["export"].notebook).exists()
    assert list_runs(tmp_path / "runs")[0]["status"] == "failed"


@pytest.mark.slow
def test_a_run_can_start_from_an_earlier_runs_results(tmp_path, tiny_notebooks):
    notebooks = tiny_notebooks(tmp_path / "nb")
    first = new_run_dir(tmp_path / "runs", "demo")
    run_pipeline(Params(), ["explore"], first, progress=False, notebooks_dir=notebooks)
    second = new_run_dir(tmp_path / "runs", "demo")
    result = run_pipeline(Params(), ["baseline"], second, based_on=first, progress=False, notebooks_dir=notebooks)
    assert result.succeeded and (second / "explore" / "done.txt").exists()
    assert result.manifest["based_on"] == str(first)


def test_git_state_reports_commit_and_dirty_flag():
    state = git_state()
    assert state["commit"] is None or len(state["commit"]) == 40


def test_the_notebooks_kernel_starts_through_mlhelpers_kernel_runs_code_and_exits_cleanly(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel

    from mlhelpers.execution import KERNEL_MODULE, ensure_kernel

    outputs = []
    name = ensure_kernel()
    argv = KernelSpecManager().get_kernel_spec(name).argv
    assert argv[argv.index("-m") + 1] == KERNEL_MODULE
    manager, client = start_new_kernel(kernel_name=name, cwd=str(tmp_path))
    process = manager.provisioner.process
    try:
        reply = client.execute_interactive("import gc, os, sys\n"
                                           "print(os.getcwd() in sys.path or '' in sys.path, gc.isenabled())",
                                           timeout=60, output_hook=lambda msg: outputs.append(msg))
    finally:
        client.stop_channels()
        manager.shutdown_kernel()
    assert reply["content"]["status"] == "ok"
    printed = "".join(msg["content"].get("text", "") for msg in outputs if msg["msg_type"] == "stream")
    assert printed.split() == ["True", "True"]  # the working folder importable, as under ipykernel_launcher
    assert process.wait(timeout=30) == 0  # asked to shut down, it exits on its own, cleanly


def test_the_executed_notebook_is_written_at_most_once_a_second_but_always_first_and_last(tmp_path):
    """papermill wrote the whole notebook before and after every cell (75 writes, 1 s of the demo's export step)."""
    from datetime import timedelta

    from papermill.engines import papermill_engines

    from mlhelpers.execution import SAVE_EVERY_SECONDS, _throttled_engine, execute_notebook

    manager_class = papermill_engines.get_engine(_throttled_engine()).manager
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    notebook.metadata["kernelspec"] = {"name": "mlhelpers", "display_name": "mlhelpers", "language": "python"}
    output = tmp_path / "out.ipynb"
    manager = manager_class(notebook, output_path=str(output), progress_bar=False)
    manager.save()
    assert output.exists()  # the first write is never skipped, however soon
    output.unlink()
    manager.save()
    assert not output.exists()  # a second write within the second is skipped
    manager.last_save_time = manager.now() - timedelta(seconds=SAVE_EVERY_SECONDS)
    manager.save()
    assert output.exists()
    # a whole run still ends with every cell's output on disk
    cells = [nbformat.v4.new_code_cell("n = 0")] + [nbformat.v4.new_code_cell("n += 1\nprint(n)") for _ in range(30)]
    cells[0].metadata["tags"] = ["parameters"]
    source = tmp_path / "many_cells.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=notebook.metadata), source)
    execute_notebook(source, output, {})
    executed = nbformat.read(output, as_version=4)
    assert [c.outputs[0]["text"].strip() for c in executed.cells[-30:]] == [str(i) for i in range(1, 31)]
    assert all(c.metadata.papermill["status"] == "completed" for c in executed.cells)
