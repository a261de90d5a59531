"""--ray: the images and embeddings passes on a Ray cluster give a local run's findings.

One local cluster for the module (``ray.cluster_utils.Cluster``: a head and two worker nodes on
127.0.0.1, one CPU each), torn down at the end. The runs go through the CLI in this process,
which is the cluster's driver. Skipped, with the reason, when the ``ray`` extra is absent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from labellint import demo
from labellint.cli import cli
from labellint.config import parse
from labellint.distributed import stages
from labellint.errors import ConfigError
from labellint.registry import by_code

from conftest import REPO, SHARED

try:
    import ray
    from ray.cluster_utils import Cluster
except ImportError:  # the ray extra is not installed
    ray = None

MODEL = SHARED / "models" / "mobilenetv2-12-int8-embed.onnx"
CHESS = SHARED / "data" / "chess_pieces" / "test"  # 29 photos, 376 boxes (train's 2,108 take too long here)


@pytest.fixture(scope="module")
def cluster():
    if ray is None:
        pytest.skip("needs Ray: pip install 'labellint-coco[ray]'")
    if not MODEL.is_file():
        pytest.skip(f"needs the shared embedding model at {MODEL}")
    old = os.environ.get("PYTHONPATH")
    # the workers import this checkout's labellint, as the driver does
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *([old] if old else [])])
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(2):
            c.add_node(num_cpus=1)
        c.wait_for_nodes()
        ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    return demo.write(out, 24, 0)


def lint(path: Path, images: Path, *extra) -> tuple[int, list, str]:
    res = CliRunner().invoke(cli, ["check", str(path), "--images", str(images), "--backbone", str(MODEL),
                                   "-f", "json", *extra])
    # Rarely (3 runs in about 37 of the killed-worker test, none in the last 23), something put
    # text on stdout before the report while a worker was being killed; what it was is reported
    # with the result, so the next occurrence names its source, and the report is still read.
    start = 0 if res.stdout.startswith("{") else res.stdout.find("\n{") + 1
    out = json.loads(res.stdout[start:]) if res.stdout[start:].startswith("{") else {"findings": []}
    err = f"stdout before the report: {res.stdout[:start]!r}\n{res.stderr}" if start else res.stderr
    return res.exit_code, [(f["code"], f["fingerprint"]) for f in out["findings"]], err


def test_demo_findings_equal_the_local_run_and_share_its_cache(cluster, shapes, monkeypatch):
    from labellint import images

    code, local, _ = lint(shapes, shapes.parent / "images", "--no-cache")
    assert code == 1 and any(c == "LL501" for c, _ in local), local
    code_r, on_ray, err = lint(shapes, shapes.parent / "images", "--ray", cluster.address)
    assert code_r == code and on_ray == local, err
    # the Ray run filled the cache a local run reads: nothing is decoded again
    calls = []
    real = images.decode
    monkeypatch.setattr(images.scanning, "decode", lambda data, limit: (calls.append(1), real(data, limit))[1])
    _, warm, _ = lint(shapes, shapes.parent / "images")
    assert warm == local and calls == []


def test_chess_photos_equal_the_local_run(cluster, shared):
    path = CHESS / "_annotations.coco.json"
    code, local, _ = lint(path, CHESS, "--no-cache")
    code_r, on_ray, err = lint(path, CHESS, "--no-cache", "--ray", cluster.address)
    assert code_r == code and on_ray == local and local, err


def _worker_pids(c) -> list[int]:
    """The pids of the pipeline's actor processes: children of this cluster's raylets."""
    raylets = {p.process.pid for node in c.list_all_nodes() for p in node.all_processes.get("raylet", [])}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid in raylets and "MapWorker" in cmd:
            found.append(int(entry.name))
    return found


def test_a_worker_killed_mid_run_changes_nothing(cluster, shapes, monkeypatch):
    from labellint.embed.embedder import Embedder

    _, local, _ = lint(shapes, shapes.parent / "images", "--no-cache")
    killed = []
    real = Embedder.take_vectors

    def take_then_kill(self, *args):
        if not killed:  # the first results are in, the rest still on the cluster: kill an actor
            pids = _worker_pids(cluster)
            assert pids, "no actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        return real(self, *args)

    monkeypatch.setattr(Embedder, "take_vectors", take_then_kill)
    code, on_ray, err = lint(shapes, shapes.parent / "images", "--no-cache", "--ray", cluster.address,
                             "--ray-batch", "2")
    assert killed and on_ray == local, err


def test_an_unreachable_address_is_one_line(cluster, shapes):
    res = CliRunner().invoke(cli, ["check", str(shapes), "--images", str(shapes.parent / "images"),
                                   "--backbone", str(MODEL), "--ray", "127.0.0.1:1"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Ray cluster at 127.0.0.1:1" in lines[0], res.stderr


HIDE = """
import os, os.path
_hidden = os.environ["LABELLINT_TEST_HIDDEN"]
_isdir, _access = os.path.isdir, os.access
os.path.isdir = lambda p: False if str(p).startswith(_hidden) else _isdir(p)
os.access = lambda p, mode, **kw: False if str(p).startswith(_hidden) else _access(p, mode, **kw)
"""


def test_a_node_without_the_images_is_named_in_one_line(cluster, shapes, tmp_path):
    """A third node whose processes cannot see the image root (a sitecustomize hides it, as a
    missing mount would): the run stops before it starts, naming that node."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(HIDE))
    images = shapes.parent / "images"
    node = cluster.add_node(num_cpus=1, env_vars={
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]), "LABELLINT_TEST_HIDDEN": str(images)})
    try:
        cluster.wait_for_nodes()
        res = CliRunner().invoke(cli, ["check", str(shapes), "--images", str(images), "--backbone", str(MODEL),
                                       "--no-cache", "--ray", cluster.address])  # warm: nothing to send
    finally:
        cluster.remove_node(node)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert node.node_id[:8] in lines[0] and f"the image root {images} is not there" in lines[0]
    assert "same path on every node" in lines[0]


# -- without a cluster ----------------------------------------------------------------------------

def test_a_run_without_ray_never_imports_it(shapes):
    script = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from labellint.cli import cli
        res = CliRunner().invoke(cli, ["check", {str(shapes)!r}, "--images", {str(shapes.parent / 'images')!r},
                                       "--no-cache"])
        assert res.exit_code == 1, res.output
        print(sorted(m for m in sys.modules if m == "ray" or m.startswith(("ray.", "labellint.distributed"))))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_the_config_keys_are_checked():
    rules = by_code()
    cfg = parse({"ray": "auto", "ray-actors": 4, "ray-batch": 8}, rules)
    assert (cfg.ray, cfg.ray_actors, cfg.ray_batch) == ("auto", 4, 8)
    for bad in ({"ray": ""}, {"ray": 3}, {"ray-actors": 0}, {"ray-batch": 1.5}, {"ray-actor": 2}):
        with pytest.raises(ConfigError):
            parse(bad, rules)


def test_the_node_probe_says_what_is_missing(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    digest = stages.code_digest()
    assert stages.probe(str(tmp_path), [str(tmp_path / "a.jpg")], digest) is None
    assert stages.probe(str(tmp_path / "nope"), [], digest) == f"the image root {tmp_path / 'nope'} is not there"
    assert "b.jpg is not there" in stages.probe(str(tmp_path), [str(tmp_path / "b.jpg")], digest)
    assert "install the same one on every node" in stages.probe(str(tmp_path), [], "0" * 16)


def test_a_ray_client_address_is_refused_in_one_line(shapes):
    if ray is None:
        pytest.skip("needs Ray: pip install 'labellint-coco[ray]'")
    res = CliRunner().invoke(cli, ["check", str(shapes), "--images", str(shapes.parent / "images"),
                                   "--backbone", str(MODEL), "--no-cache", "--ray", "ray://127.0.0.1:10001"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Ray Client addresses (ray://) are not supported" in lines[0], res.stderr
    assert "ray job submit" in lines[0]


def test_the_default_batch_spreads_few_images_over_every_worker():
    from labellint.distributed import DEFAULT_BATCH
    from labellint.distributed.driver import BATCHES_PER_ACTOR, auto_batch

    assert auto_batch(100_000, 8) == DEFAULT_BATCH  # many images: full batches
    assert auto_batch(29, 2) == 4  # the chess test split on two actors: 8 batches, 4 or more each
    assert -(-29 // auto_batch(29, 2)) >= 2 * BATCHES_PER_ACTOR
    assert auto_batch(3, 16) == 1 and auto_batch(0, 2) == 1
