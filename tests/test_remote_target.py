"""The remote target against a real MLServer serving the tiny CLIP: metadata checks, a VPOUR run equal to the
in-process one, retries through injected faults that leave the result unchanged, malformed answers and budgets."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import torch

from dassl.utils import load_checkpoint
from tests.helpers.fault_proxy import FaultProxy
from tests.test_trainers import CLASSES, dataset_yaml, run, toy_root  # noqa: F401  (fixtures)
from trainers.targets import CLIPTarget, RemoteTarget, RemoteTargetError
from trainers.targets.remote import PIXELS_MEAN, PIXELS_STD

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlserver") is None,
    reason="MLServer is not installed (pip install -r requirements-serve.txt)",
)

ROOT = Path(__file__).resolve().parents[1]
MODEL = "toy"
# The same request sizes for every run: the tiny CLIP's batch-size-dependent rounding stays out of the comparison.
BATCHING = ("TARGET.MAX_BATCH", 4)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m scripts.serve_target`` serving the tiny CLIP over the toy classes (the ToyCoOp template)."""
    yaml = tmp_path_factory.mktemp("serve") / "toy.yaml"
    yaml.write_text("DATASET:\n  NAME: ToyCoOp\n")
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "scripts.serve_target",
        "--dataset-config-file",
        str(yaml),
        "--classes",
        ",".join(CLASSES),
        "--model-name",
        MODEL,
        "--port",
        str(port),
        "MODEL.BACKBONE.NAME",
        "tiny-vit",
    ]
    env = dict(os.environ, BBVP_PLUGINS="tests.plugins.coop_style")
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the model server did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def remote_opts(url, *extra):
    return ("TARGET.NAME", "remote", "TARGET.REMOTE.URL", url, "TARGET.REMOTE.MODEL", MODEL, *BATCHING, *extra)


def prompter_weights(out):
    return load_checkpoint(str(out / "prompter" / "model.pth.tar-1"))["state_dict"]


@pytest.fixture(scope="module")
def undisturbed(server, toy_root, tmp_path_factory):  # noqa: F811
    """VPOUR through the served model and through the in-process tiny CLIP, same seed."""
    yaml = tmp_path_factory.mktemp("yaml") / "toy.yaml"
    yaml.write_text("DATASET:\n  NAME: ToyCoOp\n")
    local_out, remote_out = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("remote")
    local = run("VPOUR", toy_root, local_out, yaml, *BATCHING)
    remote = run("VPOUR", toy_root, remote_out, yaml, *remote_opts(server, "TARGET.REMOTE.CONCURRENCY", 2))
    return {"local": (local, local_out), "remote": (remote, remote_out), "yaml": yaml}


def test_the_metadata_check_names_what_the_server_serves_and_what_the_config_expects(server):
    with pytest.raises(
        RemoteTargetError, match=rf"{server}/v2/models/{MODEL} serves 4 classes, but the config expects 3"
    ):
        RemoteTarget(CLASSES[:3], url=server, model=MODEL)
    renamed = ["crop", *CLASSES[1:]]
    with pytest.raises(
        RemoteTargetError, match=r"serves 4 classes named \['annual crop'.*config's classes are \['crop'"
    ):
        RemoteTarget(renamed, url=server, model=MODEL)
    target = RemoteTarget(CLASSES, url=server, model=MODEL)
    assert target.input_size == 224 and target.num_outputs == 4
    assert "remote model at" in target.describe()


def test_vpour_through_the_served_model_equals_the_in_process_target(undisturbed):
    (local, local_out), (remote, remote_out) = undisturbed["local"], undisturbed["remote"]
    assert remote["accuracy"] == local["accuracy"]
    assert remote["queries"] == local["queries"]
    a, b = prompter_weights(local_out), prompter_weights(remote_out)
    for key in a:
        # Same trajectory up to float32 rounding: the served model renormalises [0, 1] pixels itself (one more rounding
        # per pixel), the tiny CLIP multiplies by a logit scale of 100, and SPSA-GC (lr ~28) amplifies loss differences.
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0.1)


def test_the_wire_is_exact_the_served_logits_equal_the_served_target_in_process(server):
    pixels = torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    served = CLIPTarget(CLASSES, arch="tiny-vit", input_mean=PIXELS_MEAN, input_std=PIXELS_STD)
    remote = RemoteTarget(CLASSES, url=server, model=MODEL, input_mean=PIXELS_MEAN, input_std=PIXELS_STD)
    assert torch.equal(remote(pixels), served(pixels))


def test_injected_faults_are_retried_and_leave_the_result_unchanged(
    undisturbed,
    server,
    toy_root,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    built = []
    original = RemoteTarget.from_cfg.__func__

    def record(cls, *args, **kwargs):
        built.append(original(cls, *args, **kwargs))
        return built[-1]

    monkeypatch.setattr(RemoteTarget, "from_cfg", classmethod(record))
    proxy = FaultProxy(server, ["503", "429", "slow", "drop", "503"], slow_s=6.0, retry_after=1)
    try:
        opts = remote_opts(proxy.url, "TARGET.REMOTE.TIMEOUT_S", 4.0, "TARGET.REMOTE.BACKOFF_S", 0.05)
        disturbed = run("VPOUR", toy_root, tmp_path / "faults", undisturbed["yaml"], *opts)
    finally:
        proxy.close()
    remote, remote_out = undisturbed["remote"]
    assert disturbed["accuracy"] == remote["accuracy"]
    assert disturbed["queries"] == remote["queries"]  # retried requests are not billed twice
    a, b = prompter_weights(remote_out), prompter_weights(tmp_path / "faults")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert built[0].retries == 5 and disturbed["retries"] == 5 and remote["retries"] == 0
    log = (tmp_path / "faults" / "log.txt").read_text()
    assert "; 5 requests resent after a failure (not billed)" in log
    times = [t for t, _ in proxy.seen]
    assert times[2] - times[1] >= 1.0  # the 429's Retry-After was honoured


@pytest.mark.parametrize(
    "fault, message",
    [
        ("classes", r"answered logits of shape \[2, 3\] \(6 values\) for 2 images; expected \[2, 4\]"),
        ("nan", r"answered non-finite logits"),
        ("not_json", r"sent an inference answer that is not JSON"),
    ],
)
def test_a_malformed_answer_is_an_error_naming_the_endpoint(server, fault, message):
    proxy = FaultProxy(server, [fault])
    try:
        target = RemoteTarget(CLASSES, url=proxy.url, model=MODEL, retries=0)
        with pytest.raises(RemoteTargetError, match=rf"{proxy.url}/v2/models/{MODEL}.* {message}"):
            target(torch.rand(2, 3, 224, 224))
    finally:
        proxy.close()


def test_an_endpoint_that_stays_down_is_an_error_naming_it():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteTargetError, match=rf"{url}/v2/models/{MODEL} did not answer after 2 attempts"):
        RemoteTarget(CLASSES, url=url, model=MODEL, retries=1, backoff_s=0.01)


def test_a_remote_run_stops_before_exceeding_its_budget(undisturbed, server, toy_root, tmp_path):  # noqa: F811
    opts = remote_opts(server, "OPTIM.MAX_EPOCH", 2, "TARGET.BUDGET_IMAGES", 100)
    stopped = run("VPOUR", toy_root, tmp_path / "budget", undisturbed["yaml"], *opts)
    q = stopped["queries"]
    assert stopped["stopped_by"] == "budget" and q["total"]["images"] <= 100
    assert q["train"]["images"] == 5 * 16 and q["test"]["images"] == 12 and stopped["steps"] == 5


def test_an_endpoint_that_goes_down_mid_run_stops_it_with_a_checkpoint_and_the_resume_is_exact(
    undisturbed,
    server,
    toy_root,  # noqa: F811
    tmp_path,
):
    proxy = FaultProxy(server, [""] * 8 + ["503"] * 40)  # two steps of 4 requests pass, then the endpoint is down
    out = tmp_path / "down"
    try:
        opts = remote_opts(proxy.url, "TARGET.REMOTE.RETRIES", 1, "TARGET.REMOTE.BACKOFF_S", 0.01)
        with pytest.raises(SystemExit) as stop:
            run("VPOUR", toy_root, out, undisturbed["yaml"], *opts)
    finally:
        proxy.close()
    assert stop.value.code == 75
    log = (out / "log.txt").read_text()
    assert "Stopped before step 3 of epoch 1" in log and "did not answer after 2 attempts" in log
    assert (out / "prompter" / "checkpoint").read_text().strip() == "model.pth.tar-0+2"
    assert not (out / "results.json").exists()

    resumed = run("VPOUR", toy_root, out, undisturbed["yaml"], *remote_opts(server))  # the URL may change
    remote, remote_out = undisturbed["remote"]
    a, b = prompter_weights(remote_out), prompter_weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["accuracy"] == remote["accuracy"] and resumed["queries"] == remote["queries"]
