"""The GitHub Action (``action.yml``), its steps run in a simulated Actions environment.

The simulation does what the runner does for a composite action, with what this machine has:

* the action's checkout (``GITHUB_ACTION_PATH``) is a copy of this source tree, and its install
  step runs for real: ``python -m pip install $GITHUB_ACTION_PATH`` into a fresh virtual
  environment whose dependencies come from the test environment (a ``.pth`` line), so labellint is
  installed from the action's files, not imported from this checkout;
* the workspace is a depth-1 clone of the pull request's branch from a bare "origin" repository,
  as ``actions/checkout`` makes it (the base branch is not there: the action must fetch it);
* ``run`` steps get the environment their ``env:`` maps give, with ``${{ inputs.* }}`` and
  ``${{ steps.*.outputs.* }}`` filled in as the runner does, and run as ``bash -e -o pipefail``;
  ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY`` are files read back after each step;
* ``uses`` steps (setup-python, upload-sarif) are not run; the test checks what they would get.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from source_tree import REPO, copy_source_tree, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the `git` program on PATH")

ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

IMAGES = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
          {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}]
CATEGORIES = [{"id": 1, "name": "cat"}]
BOX_INSIDE = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0}
# LL105 (the box reaches 16 px past the right edge): on the base branch, accepted there
BOX_OUTSIDE = {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 10, 30, 20], "area": 600, "iscrowd": 0}
# LL012 (no category 9): what the pull request adds
UNKNOWN_CATEGORY = {"id": 3, "image_id": 1, "category_id": 9, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0}


def _dataset(*annotations) -> str:
    return json.dumps({"images": IMAGES, "categories": CATEGORIES, "annotations": list(annotations)}, indent=1) + "\n"


# --------------------------------------------------------------------------- the simulated runner


def _value(expr: str, inputs: dict, outputs: dict) -> str:
    """One ``${{ }}`` expression of the kinds the action's env maps use."""
    if m := re.fullmatch(r"inputs\.([\w-]+)", expr):
        return inputs[m.group(1)]
    if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr):
        return outputs.get(m.group(1), {}).get(m.group(2), "")
    raise AssertionError(f"the simulation does not evaluate ${{{{ {expr} }}}}")


def _read_outputs(path: Path) -> dict:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        assert sep, f"GITHUB_OUTPUT line without '=': {line!r}"
        out[key] = value
    return out


class Runner:
    """Runs the action's steps for one job; ``results`` keeps each run step's process."""

    def __init__(self, action_path: Path, venv: Path, workspace: Path, tmp: Path, base_env: dict):
        self.action_path, self.venv, self.workspace, self.tmp = action_path, venv, workspace, tmp
        self.base_env = base_env
        self.summary = tmp / "step_summary.md"
        self.outputs: dict[str, dict] = {}
        self.uses: dict[str, dict] = {}
        self.results: dict[str, subprocess.CompletedProcess] = {}

    def env(self) -> dict:
        e = dict(self.base_env)
        e.update(GITHUB_ACTION_PATH=str(self.action_path), GITHUB_WORKSPACE=str(self.workspace),
                 GITHUB_STEP_SUMMARY=str(self.summary), RUNNER_TEMP=str(self.tmp / "runner-temp"),
                 PATH=f"{self.venv / 'bin'}{os.pathsep}{e['PATH']}", GITHUB_ACTIONS="true", CI="true")
        return e

    def run(self, **given) -> subprocess.CompletedProcess:
        """Every step with these inputs (the others at their defaults); the last step's process."""
        unknown = set(given) - set(ACTION["inputs"])
        assert not unknown, f"not inputs of the action: {unknown}"
        inputs = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
        inputs.update(given)
        (self.tmp / "runner-temp").mkdir(exist_ok=True)
        last = None
        for i, step in enumerate(ACTION["runs"]["steps"]):
            sid = step.get("id", f"step{i}")
            if "uses" in step:
                self.uses[step["uses"].split("@")[0]] = {
                    k: EXPRESSION.sub(lambda m: _value(m.group(1), inputs, self.outputs), str(v))
                    for k, v in step.get("with", {}).items()}
                continue
            out_file = self.tmp / f"output-{sid}"
            out_file.write_text("", encoding="utf-8")
            env = self.env()
            env["GITHUB_OUTPUT"] = str(out_file)
            for k, v in step.get("env", {}).items():
                env[k] = EXPRESSION.sub(lambda m: _value(m.group(1), inputs, self.outputs), str(v))
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]],
                                  cwd=self.workspace, env=env, capture_output=True, text=True, timeout=300)
            self.outputs[sid] = _read_outputs(out_file)
            self.results[sid] = last = proc
            if proc.returncode != 0:  # only the verdict may fail the job, after the upload
                assert step is ACTION["runs"]["steps"][-1], (
                    f"step {step.get('name')} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return last


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def git_env(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("action-env")
    (base / "gitconfig").write_text("[user]\n\tname = tests\n\temail = tests@labellint.invalid\n"
                                    "[commit]\n\tgpgsign = false\n[init]\n\tdefaultBranch = main\n", encoding="utf-8")
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("GIT_", "GITHUB_", "RUNNER_", "INPUT_", "PIP_")) and k not in ("VIRTUAL_ENV",)}
    e.update(GIT_CONFIG_GLOBAL=str(base / "gitconfig"), GIT_CONFIG_NOSYSTEM="1", LABELLINT_NO_PROGRESS="1",
             NO_COLOR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return e


@pytest.fixture(scope="module")
def installed(tmp_path_factory, git_env) -> tuple[Path, Path]:
    """(action path, venv): the action's checkout and the environment its install step filled."""
    action_path = copy_source_tree(tmp_path_factory.mktemp("action-checkout"), git_env)
    venv = tmp_path_factory.mktemp("action-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # the test environment's packages (pip included) behind the new environment's own
    (site / "test-environment.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    tmp = tmp_path_factory.mktemp("action-install")
    runner = Runner(action_path, venv, tmp, tmp, git_env)
    step = next(s for s in ACTION["runs"]["steps"] if s.get("name") == "Install labellint")
    env = runner.env()
    env["INPUT_EXTRAS"] = ""
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"install step failed:\n{proc.stdout}\n{proc.stderr}"
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import labellint; print(labellint.__file__)"],
                           cwd=tmp, env=env, capture_output=True, text=True, check=True)
    assert Path(probe.stdout.strip()).is_relative_to(venv), f"labellint not installed from the action: {probe.stdout}"
    assert (venv / "bin" / "labellint").is_file()
    return action_path, venv


@pytest.fixture
def pull_request(tmp_path, git_env) -> Path:
    """The workspace of a pull request that adds one defect to a dataset with one accepted defect:
    a depth-1 clone of its branch, as actions/checkout leaves it (origin/main is not there)."""
    origin = tmp_path / "origin.git"
    git("init", "-q", "--bare", str(origin), cwd=tmp_path, env=git_env)
    author = tmp_path / "author"
    git("clone", "-q", str(origin), str(author), cwd=tmp_path, env=git_env)
    data = author / "data" / "train.json"
    data.parent.mkdir()
    data.write_text(_dataset(BOX_INSIDE, BOX_OUTSIDE), encoding="utf-8")
    git("add", "-A", cwd=author, env=git_env)
    git("commit", "-q", "-m", "dataset", cwd=author, env=git_env)
    git("push", "-q", "origin", "main", cwd=author, env=git_env)
    git("checkout", "-q", "-b", "more-labels", cwd=author, env=git_env)
    return author


def _open_pr(author: Path, tmp_path: Path, git_env: dict, dataset: str) -> Path:
    (author / "data" / "train.json").write_text(dataset, encoding="utf-8")
    git("commit", "-q", "--allow-empty", "-am", "more labels", cwd=author, env=git_env)
    git("push", "-q", "origin", "more-labels", cwd=author, env=git_env)
    workspace = tmp_path / "workspace"
    git("clone", "-q", "--depth", "1", "--branch", "more-labels", f"file://{tmp_path / 'origin.git'}",
        str(workspace), cwd=tmp_path, env=git_env)
    assert subprocess.run(["git", "rev-parse", "--verify", "--quiet", "origin/main"], cwd=workspace,
                          env=git_env, capture_output=True).returncode != 0
    return workspace


def _runner(installed, workspace, tmp_path, git_env) -> Runner:
    action_path, venv = installed
    env = dict(git_env, GITHUB_BASE_REF="main", GITHUB_EVENT_NAME="pull_request", GITHUB_REPOSITORY="o/r",
               GITHUB_SERVER_URL="https://github.com", GITHUB_SHA="0" * 40)
    return Runner(action_path, venv, workspace, tmp_path, env)


# --------------------------------------------------------------------------- tests


def test_the_action_file_is_well_formed():
    steps = ACTION["runs"]["steps"]
    assert ACTION["runs"]["using"] == "composite"
    text = (REPO / "action.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"inputs\.([\w-]+)", text))
    assert used == set(ACTION["inputs"]), f"inputs declared but unused or used but undeclared: {used ^ set(ACTION['inputs'])}"
    for step in steps:
        # a value pasted into a script would be shell code: inputs go through env only
        assert "${{" not in step.get("run", ""), f"expression inside the script of step {step.get('name')}"
        if "run" in step:
            assert step.get("shell") == "bash", "composite run steps need a shell"
            for script in re.findall(r'"\$GITHUB_ACTION_PATH/([^"]+)"', step["run"]):
                assert (REPO / script).is_file(), f"{script} is not in the repository"
    uses = {s["uses"].split("@")[0] for s in steps if "uses" in s}
    assert uses == {"actions/setup-python", "github/codeql-action/upload-sarif"}
    for name, spec in ACTION["outputs"].items():
        m = EXPRESSION.fullmatch(spec["value"])
        assert m and m.group(1) == f"steps.check.outputs.{name}"


def test_pull_request_with_a_new_defect_fails_and_reports_only_it(installed, pull_request, tmp_path, git_env):
    workspace = _open_pr(pull_request, tmp_path, git_env, _dataset(BOX_INSIDE, BOX_OUTSIDE, UNKNOWN_CATEGORY))
    runner = _runner(installed, workspace, tmp_path, git_env)
    last = runner.run(paths="data")
    check = runner.results["check"]
    assert check.returncode == 0, check.stderr  # the verdict comes at the end, after the upload
    outputs = runner.outputs["check"]
    assert outputs["exit-code"] == "1" and outputs["findings"] == "1", (outputs, check.stdout, check.stderr)
    assert last.returncode == 1, "the last step must fail the job"
    # only the new finding: on the diff as an annotation, in SARIF, in the summary
    assert "::error file=data/train.json" in check.stdout and "LL012" in check.stdout
    assert "LL105" not in check.stdout
    sarif = json.loads(Path(outputs["sarif-file"]).read_text(encoding="utf-8"))
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["LL012"]
    summary = runner.summary.read_text(encoding="utf-8")
    assert "LL012" in summary and "LL105" not in summary
    assert "https://github.com/o/r/blob/" + "0" * 40 + "/data/train.json#L" in summary
    # the base branch was fetched to compare with
    assert subprocess.run(["git", "rev-parse", "--verify", "--quiet", "origin/main"], cwd=workspace,
                          env=git_env, capture_output=True).returncode == 0
    upload = runner.uses["github/codeql-action/upload-sarif"]
    assert upload == {"sarif_file": outputs["sarif-file"], "category": "labellint"}


def test_pull_request_without_new_defects_passes(installed, pull_request, tmp_path, git_env):
    moved = dict(BOX_INSIDE, bbox=[2, 3, 10, 10])  # a change, no new finding; the old LL105 stays accepted
    workspace = _open_pr(pull_request, tmp_path, git_env, _dataset(moved, BOX_OUTSIDE))
    runner = _runner(installed, workspace, tmp_path, git_env)
    last = runner.run(paths="data")
    assert runner.outputs["check"]["exit-code"] == "0", runner.results["check"].stderr
    assert runner.outputs["check"]["findings"] == "0"
    assert last.returncode == 0
    assert runner.summary.read_text(encoding="utf-8").strip(), "the summary is written for a clean run too"


def test_fail_on_and_an_explicit_diff_base(installed, pull_request, tmp_path, git_env):
    workspace = _open_pr(pull_request, tmp_path, git_env, _dataset(BOX_INSIDE, BOX_OUTSIDE, UNKNOWN_CATEGORY))
    git("fetch", "-q", "origin", "main:refs/remotes/origin/main", cwd=workspace, env=git_env)
    runner = _runner(installed, workspace, tmp_path, git_env)
    # the whole branch against its own head: nothing is new
    runner.run(paths="data", **{"diff-base": "HEAD"})
    assert runner.outputs["check"]["exit-code"] == "0"
    runner.run(paths="data", **{"diff-base": "origin/main", "upload-sarif": "false"})
    assert runner.outputs["check"]["exit-code"] == "1"


def test_inputs_are_data_not_shell_code(installed, pull_request, tmp_path, git_env):
    """A hostile value in an input reaches labellint as one argument: nothing is executed."""
    workspace = _open_pr(pull_request, tmp_path, git_env, _dataset(BOX_INSIDE, BOX_OUTSIDE))
    runner = _runner(installed, workspace, tmp_path, git_env)
    marker = tmp_path / "pwned"
    last = runner.run(paths="data", args=f"$(touch {marker}) `touch {marker}`; touch {marker}")
    assert not marker.exists()
    assert runner.outputs["check"]["exit-code"] == "2"  # the words are paths that do not exist
    assert last.returncode == 2
    assert "run errors" in runner.summary.read_text(encoding="utf-8")


def test_broken_dataset_is_exit_2_with_the_error_in_the_summary(installed, pull_request, tmp_path, git_env):
    workspace = _open_pr(pull_request, tmp_path, git_env, '{"images": [,]}\n')
    runner = _runner(installed, workspace, tmp_path, git_env)
    last = runner.run(paths="data")
    check = runner.results["check"]
    assert runner.outputs["check"]["exit-code"] == "2"
    assert last.returncode == 2
    assert "data/train.json:1:" in check.stderr and "Traceback" not in check.stderr
    assert "data/train.json" in runner.summary.read_text(encoding="utf-8")


def test_a_run_that_cannot_start_says_so_in_the_summary(installed, pull_request, tmp_path, git_env):
    workspace = _open_pr(pull_request, tmp_path, git_env, _dataset(BOX_INSIDE, BOX_OUTSIDE))
    (workspace / "empty").mkdir()
    runner = _runner(installed, workspace, tmp_path, git_env)
    last = runner.run(paths="empty")
    assert runner.outputs["check"]["exit-code"] == "2" and last.returncode == 2
    assert "no JSON files found" in runner.results["check"].stderr
    assert "sarif-file" not in runner.outputs["check"]  # nothing to upload
    assert "labellint could not run" in runner.summary.read_text(encoding="utf-8")
