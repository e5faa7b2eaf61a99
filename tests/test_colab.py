"""The Colab set-up cell: the same first cell in every notebook, a no-op outside Colab, and on a simulated
Colab runtime the clone and install commands (intercepted, never run)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from vtr import colab
from vtr.paths import project_root
from vtr.report.notebooks import discover_notebooks, parameters_cells

ROOT = project_root()
NOTEBOOKS = discover_notebooks(ROOT / "notebooks") if (ROOT / "notebooks").is_dir() else []
URL = "https://example.org/owner/vtr.git"


@pytest.mark.skipif(not NOTEBOOKS, reason="notebooks/ holds no NN_name.ipynb notebooks yet")
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda nb: nb.stem)
def test_every_notebook_starts_with_the_current_bootstrap_cell(notebook: Any) -> None:
    nb = nbformat.read(notebook.path, as_version=4)
    assert colab.has_current_bootstrap(nb), (
        f"{notebook.path}: the first cell is not vtr.colab.BOOTSTRAP_SOURCE; run "
        f"`python -m vtr.colab {notebook.path.relative_to(ROOT)}`"
    )
    assert 0 not in parameters_cells(nb), "the parameters cell must stay a cell of its own"


class FakeShell:
    """Stands in for IPython's shell: records ``!`` commands, expanding ``{name}`` like IPython does."""

    def __init__(self, namespace: dict[str, Any], on_system: Any = None) -> None:
        self.namespace, self.on_system, self.commands = namespace, on_system, []

    def system(self, command: str) -> None:
        command = command.format_map(self.namespace)
        self.commands.append(command)
        if self.on_system:
            self.on_system(command)


def run_bootstrap_cell(on_system: Any = None) -> tuple[FakeShell, dict[str, Any]]:
    """Execute the cell as IPython would (its ``!`` line becomes ``get_ipython().system(...)``)."""
    namespace: dict[str, Any] = {}
    shell = FakeShell(namespace, on_system)
    namespace["get_ipython"] = lambda: shell
    exec(TransformerManager().transform_cell(colab.BOOTSTRAP_SOURCE), namespace)
    return shell, namespace


class FakePopen:
    """``subprocess.Popen`` that records the command and prints a line of pip output instead of running."""

    calls: list[list[str]] = []
    returncode_to_give = 0

    def __init__(self, command: list[str], **kwargs: Any) -> None:
        FakePopen.calls.append(list(command))
        self.stdout: Iterator[str] = iter(
            ["Requirement already satisfied: numpy\n", "Successfully installed vtr\n"]
        )
        self.returncode = FakePopen.returncode_to_give

    def __enter__(self) -> FakePopen:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


@pytest.fixture()
def no_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)


@pytest.fixture()
def fake_colab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """A Colab runtime as the cell and vtr.colab see it: ``google.colab`` imported, its secrets holding
    VTR_REPO_URL, VTR_HOME in a temporary folder, and pip intercepted."""
    secrets = {"VTR_REPO_URL": URL}
    asked: list[str] = []

    def get_secret(key: str) -> str:
        asked.append(key)
        return secrets[key]

    module = types.ModuleType("google.colab")
    module.userdata = types.SimpleNamespace(get=get_secret)  # type: ignore[attr-defined]
    if importlib.util.find_spec("google") is None:  # a namespace package where protobuf is installed
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", module)
    home = tmp_path / "content" / "vtr"
    monkeypatch.setenv("VTR_HOME", str(home))
    monkeypatch.delenv("VTR_REPO_URL", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the cell prepends the clone's lib/
    FakePopen.calls, FakePopen.returncode_to_give = [], 0
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    monkeypatch.setattr(colab, "installed_checkout", lambda: None)  # vtr not installed yet
    return {"home": home, "asked": asked}


def fake_clone(command: str) -> None:
    """What ``git clone URL HOME`` leaves behind, as far as setup() looks."""
    home = Path(command.split()[-1])
    (home / "lib").mkdir(parents=True)
    (home / "pyproject.toml").write_text('[project]\nname = "vtr"\n')


def test_bootstrap_cell_does_nothing_outside_colab(no_colab: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = list(sys.path)
    shell, namespace = run_bootstrap_cell()
    assert shell.commands == []
    assert sys.path == before
    assert "setup" not in namespace and "VTR_HOME" not in namespace


def test_bootstrap_cell_on_colab_clones_from_the_secret_and_installs(
    fake_colab: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    home = fake_colab["home"]
    shell, _ = run_bootstrap_cell(on_system=fake_clone)
    assert shell.commands == [f"git clone --depth 1 {URL} {home}"]
    assert fake_colab["asked"] == ["VTR_REPO_URL"]
    assert sys.path[0] == str(home / "lib")
    assert FakePopen.calls == [
        [sys.executable, "-m", "pip", "install", "--progress-bar", "off", "-e", str(home)]
    ]
    out = capsys.readouterr().out
    assert "Successfully installed vtr" in out and "Requirement already satisfied" not in out
    assert "no restart needed" in out


def test_bootstrap_cell_prefers_the_environment_variable(
    fake_colab: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTR_REPO_URL", "https://example.org/fork/vtr.git")
    shell, _ = run_bootstrap_cell(on_system=fake_clone)
    assert shell.commands == [f"git clone --depth 1 https://example.org/fork/vtr.git {fake_colab['home']}"]
    assert fake_colab["asked"] == []


def test_bootstrap_cell_stops_when_the_clone_failed(fake_colab: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="git clone of VTR_REPO_URL failed"):
        run_bootstrap_cell(on_system=lambda command: None)
    assert FakePopen.calls == []


def test_bootstrap_cell_after_the_restart_finds_the_install(
    fake_colab: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = fake_colab["home"]
    fake_clone(f"git clone {URL} {home}")
    monkeypatch.setattr(colab, "installed_checkout", lambda: home.resolve())
    shell, _ = run_bootstrap_cell()
    assert shell.commands == [] and FakePopen.calls == [] and fake_colab["asked"] == []
    assert f"vtr is installed from {home.resolve()}" in capsys.readouterr().out


def test_setup_asks_for_one_restart_when_pip_replaced_an_imported_package(
    fake_colab: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = fake_colab["home"]
    fake_clone(f"git clone {URL} {home}")
    versions = iter(
        [{"numpy": "1.0", "pyyaml": "6.0"}, {"numpy": "2.0", "pyyaml": "6.0", "open-clip-torch": "3"}]
    )
    monkeypatch.setattr(colab, "installed_versions", lambda: next(versions))
    monkeypatch.setattr(colab.importlib.metadata, "packages_distributions", lambda: {"numpy": ["numpy"]})
    monkeypatch.setitem(sys.modules, "numpy", types.ModuleType("numpy"))
    with pytest.raises(colab.RestartRequired, match=r"\(numpy\)") as caught:
        colab.setup(home)
    assert any("Runtime → Restart session" in line for line in caught.value._render_traceback_())
    assert len(FakePopen.calls) == 1


def test_setup_reports_a_failed_install(fake_colab: dict[str, Any]) -> None:
    home = fake_colab["home"]
    fake_clone(f"git clone {URL} {home}")
    FakePopen.returncode_to_give = 1
    with pytest.raises(RuntimeError, match="failed \\(exit 1\\)"):
        colab.setup(home)


def test_setup_refuses_a_folder_that_is_not_a_checkout(fake_colab: dict[str, Any]) -> None:
    fake_colab["home"].mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="not a vtr checkout"):
        colab.setup(fake_colab["home"])
    assert FakePopen.calls == []


def test_setup_is_a_no_op_outside_colab(no_colab: None, monkeypatch: pytest.MonkeyPatch) -> None:
    FakePopen.calls = []
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    colab.setup("/nonexistent/vtr")
    assert FakePopen.calls == []


def test_setup_needs_only_the_standard_library() -> None:
    """On Colab the cell imports vtr.colab from the fresh clone before pip has installed anything."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import vtr.colab; "
        "third_party = sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - {'vtr', '__main__'}); "
        "assert not third_party, third_party"
    )
    # -S: no site-packages at all, as in a Python that has none of vtr's dependencies
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(ROOT / "lib")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_in_colab_reads_the_module_or_the_release_tag(no_colab: None) -> None:
    assert not colab.in_colab({})
    assert colab.in_colab({"COLAB_RELEASE_TAG": "release-colab_20260101-060000_RC00"})


def test_stale_distributions_are_changed_and_imported() -> None:
    before = {"numpy": "1.0", "torch": "2.0", "pandas": "2.1", "vtr": "0.0"}
    after = {"numpy": "2.0", "torch": "2.1", "pandas": "2.1", "vtr": "0.1", "open-clip-torch": "3.0"}
    modules_of = {
        "numpy": ["numpy"],
        "torch": ["torch"],
        "pandas": ["pandas"],
        "PIL": ["Pillow"],
        "vtr": ["vtr"],
    }
    loaded = ["numpy.linalg", "pandas", "vtr.colab", "PIL"]
    # torch changed but was not imported; pandas imported but unchanged; vtr is loaded from the clone
    assert colab.stale_distributions(before, after, loaded, modules_of) == ["numpy"]
    assert colab.stale_distributions(before, before, loaded, modules_of) == []
    # a removed distribution whose module is loaded is stale too
    assert colab.stale_distributions({"pillow": "10"}, {}, loaded, modules_of) == ["pillow"]


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        ('{"url": "file:///content/my%20vtr", "dir_info": {"editable": true}}', Path("/content/my vtr")),
        ('{"url": "file:///content/vtr", "dir_info": {}}', None),  # a plain install is a copy, not the clone
        ('{"url": "https://example.org/vtr.tar.gz", "archive_info": {}}', None),
        (None, None),
        ("not json", None),
    ],
)
def test_installed_checkout_reads_pep_610_direct_url(
    monkeypatch: pytest.MonkeyPatch, direct_url: str | None, expected: Path | None
) -> None:
    dist = types.SimpleNamespace(read_text=lambda name: direct_url if name == "direct_url.json" else None)
    monkeypatch.setattr(colab.importlib.metadata, "distribution", lambda name: dist)
    assert colab.installed_checkout() == (expected.resolve() if expected else None)


def test_write_bootstrap_inserts_once_and_replaces_an_old_version(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("profile = 'sample'")]
    path = tmp_path / "00_x.ipynb"
    nbformat.write(nb, path)
    assert colab.write_bootstrap(path)
    assert not colab.write_bootstrap(path)  # idempotent
    first = nbformat.read(path, as_version=4)
    assert [c.source for c in first.cells[1:]] == ["# title", "profile = 'sample'"]
    assert colab.has_current_bootstrap(first)
    first.cells[0].source = "# an older set-up cell"
    nbformat.write(first, path)
    assert colab.write_bootstrap(path)
    again = nbformat.read(path, as_version=4)
    assert len(again.cells) == 3 and colab.has_current_bootstrap(again)
