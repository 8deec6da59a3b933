"""The remote target against a real MLServer serving the tiny CLIP: metadata checks, a VPOUR run equal to the
in-process one, retries through injected faults that leave the result unchanged, malformed answers, budgets and the
query log. Headers, versions and pacing are checked against a small capturing V2 server written here."""

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from dassl.config import get_cfg_default
from dassl.utils import load_checkpoint
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.model_server import free_port, serving
from tests.test_trainers import CLASSES, dataset_yaml, run, toy_root  # noqa: F401  (fixtures)
from trainers.config import extend_cfg
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
# Runs compared with the in-process target read [0, 1] pixels, so the client sends its images unchanged and the served
# model normalises them exactly as the in-process one does: the same float operations on both sides. With CLIP's
# normalisation as input, the client would first convert to [0, 1] (one rounding per pixel that the in-process run
# does not make), and SPSA's large steps turn that into parameters that differ in the third decimal.
PIXELS = ("INPUT.PIXEL_MEAN", "[0.0, 0.0, 0.0]", "INPUT.PIXEL_STD", "[1.0, 1.0, 1.0]")
TOKEN = "tok-3f9a1c7e5b"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m scripts.serve_target`` serving the tiny CLIP over the toy classes (the ToyCoOp template)."""
    yaml = tmp_path_factory.mktemp("serve") / "toy.yaml"
    yaml.write_text("DATASET:\n  NAME: ToyCoOp\n")
    args = ["--dataset-config-file", str(yaml), "--classes", ",".join(CLASSES), "--model-name", MODEL]
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    with serving(
        [*args, "MODEL.BACKBONE.NAME", "tiny-vit"], log, env={"BBVP_PLUGINS": "tests.plugins.coop_style"}
    ) as url:
        yield url


class CapturingServer:
    """A V2 endpoint for the toy classes (8 px input) that answers zero logits at once and records, per request,
    its arrival time, method, path and headers."""

    def __init__(self, side: int = 8):
        self.side = side
        self.seen: list[tuple[float, str, str, dict[str, str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._record()
                side = capture.side
                self._reply(
                    {
                        "name": MODEL,
                        "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, 3, side, side]}],
                        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, len(CLASSES)]}],
                    }
                )

            def do_POST(self) -> None:
                self._record()
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                n = request["inputs"][0]["shape"][0]
                logits = {
                    "name": "logits",
                    "datatype": "FP32",
                    "shape": [n, len(CLASSES)],
                    "data": [0.0] * n * len(CLASSES),
                }
                self._reply({"model_name": MODEL, "outputs": [logits]})

            def _record(self) -> None:
                capture.seen.append((time.monotonic(), self.command, self.path, dict(self.headers.items())))

            def _reply(self, answer: dict) -> None:
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def capture():
    server = CapturingServer()
    yield server
    server.close()


def read_query_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def remote_opts(url, *extra):
    return ("TARGET.NAME", "remote", "TARGET.REMOTE.URL", url, "TARGET.REMOTE.MODEL", MODEL, *BATCHING, *PIXELS, *extra)


def learned_weights(out, name="prompter"):
    return load_checkpoint(str(out / name / "model.pth.tar-1"))["state_dict"]


def local_and_remote(method, server, root, tmp_path_factory):
    """``method`` trained through the in-process tiny CLIP and through the served one, same seed."""
    yaml = tmp_path_factory.mktemp("yaml") / "toy.yaml"
    yaml.write_text("DATASET:\n  NAME: ToyCoOp\n")
    local_out, remote_out = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("remote")
    local = run(method, root, local_out, yaml, *BATCHING, *PIXELS)
    remote = run(method, root, remote_out, yaml, *remote_opts(server, "TARGET.REMOTE.CONCURRENCY", 2))
    return {"local": (local, local_out), "remote": (remote, remote_out), "yaml": yaml}


@pytest.fixture(scope="module")
def undisturbed(server, toy_root, tmp_path_factory):  # noqa: F811
    return local_and_remote("VPOUR", server, toy_root, tmp_path_factory)


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


def assert_same_run(runs, name):
    """Bit for bit: the JSON wire carries float32 exactly both ways and both sides compute the same operations."""
    (local, local_out), (remote, remote_out) = runs["local"], runs["remote"]
    assert remote["accuracy"] == local["accuracy"]
    assert remote["queries"] == local["queries"]
    a, b = learned_weights(local_out, name), learned_weights(remote_out, name)
    assert a.keys() == b.keys() and all(torch.equal(b[key], a[key]) for key in a)


def test_vpour_through_the_served_model_equals_the_in_process_target(undisturbed):
    assert_same_run(undisturbed, "prompter")


def test_blackvip_through_the_served_model_equals_the_in_process_target(server, toy_root, tmp_path_factory):  # noqa: F811
    runs = local_and_remote("BLACKVIP", server, toy_root, tmp_path_factory)
    assert_same_run(runs, "coordinator")
    assert runs["remote"][0]["queries"]["train"]["images"] > 0


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
    monkeypatch.setenv("BBVP_TEST_TOKEN", TOKEN)
    proxy = FaultProxy(server, ["503", "429", "slow", "drop", "503"], slow_s=6.0, retry_after=1)
    query_log = tmp_path / "queries.jsonl"
    try:
        opts = remote_opts(
            proxy.url,
            *("TARGET.REMOTE.TIMEOUT_S", 4.0, "TARGET.REMOTE.BACKOFF_S", 0.05),
            *("TARGET.REMOTE.TOKEN_ENV", "BBVP_TEST_TOKEN", "TARGET.REMOTE.QUERY_LOG", query_log),
        )
        disturbed = run("VPOUR", toy_root, tmp_path / "faults", undisturbed["yaml"], *opts)
    finally:
        proxy.close()
    remote, remote_out = undisturbed["remote"]
    assert disturbed["accuracy"] == remote["accuracy"]
    assert disturbed["queries"] == remote["queries"]  # retried requests are not billed twice
    a, b = learned_weights(remote_out), learned_weights(tmp_path / "faults")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert built[0].retries == 5 and disturbed["retries"] == 5 and remote["retries"] == 0
    log = (tmp_path / "faults" / "log.txt").read_text()
    assert "; 5 requests resent after a failure (not billed)" in log
    times = [t for t, _ in proxy.seen]
    assert times[2] - times[1] >= 1.0  # the 429's Retry-After was honoured

    # The query log accounts for every attempt: billed images per split as counted, the rest are the resends.
    lines = read_query_log(query_log)
    assert len(lines) == len(proxy.seen)
    for split, counted in disturbed["queries"].items():
        if split != "total" and isinstance(counted, dict):
            assert sum(q["images"] for q in lines if q["billed"] and q["split"] == split) == counted["images"]
    failed = [q["status"] for q in lines if not q["billed"]]
    assert len(failed) == 5 and failed.count(503) == 2 and failed.count(429) == 1
    assert {type(s) for s in failed} == {int, str}  # the timeout and the dropped connection by exception name
    # The token reaches neither the printed config, the log, the results nor the query log.
    for written in (query_log, tmp_path / "faults" / "log.txt", tmp_path / "faults" / "results.json"):
        assert TOKEN not in written.read_text()
    assert "BBVP_TEST_TOKEN" in (tmp_path / "faults" / "log.txt").read_text()


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
    a, b = learned_weights(remote_out), learned_weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["accuracy"] == remote["accuracy"] and resumed["queries"] == remote["queries"]


def test_the_query_log_has_a_line_per_attempt_summing_to_the_billed_images_and_the_resends(server, tmp_path):
    proxy = FaultProxy(server, ["", "503"])
    log = tmp_path / "audit" / "queries.jsonl"
    try:
        target = RemoteTarget(
            CLASSES, url=proxy.url, model=MODEL, token=TOKEN, query_log=log, max_batch=2, concurrency=2, backoff_s=0.01
        )
        target(torch.rand(6, 3, 224, 224), split="train")
        target(torch.rand(1, 3, 224, 224), split="test")
    finally:
        proxy.close()
    lines = read_query_log(log)
    assert len(lines) == 5 and target.retries == 1
    assert sum(q["images"] for q in lines if q["billed"]) == target.counter.images() == 7
    assert [q["status"] for q in lines if not q["billed"]] == [503]
    assert sorted((q["split"], q["attempt"], q["billed"]) for q in lines) == [
        ("test", 1, True),
        ("train", 1, False),
        ("train", 1, True),
        ("train", 1, True),
        ("train", 2, True),
    ]
    assert all(q["endpoint"] == f"{proxy.url}/v2/models/{MODEL}" and q["latency_s"] >= 0 for q in lines)
    assert all(q["time"].endswith("+00:00") for q in lines)
    assert TOKEN not in log.read_text()


def test_the_query_log_is_appended_to_and_is_off_by_default(capture, tmp_path):
    log = tmp_path / "queries.jsonl"
    for _ in range(2):
        RemoteTarget(CLASSES, url=capture.url, model=MODEL, query_log=log)(torch.rand(1, 3, 8, 8))
    assert len(read_query_log(log)) == 2
    assert RemoteTarget(CLASSES, url=capture.url, model=MODEL).query_log is None


def remote_cfg(url, **remote):
    cfg = extend_cfg(get_cfg_default())
    cfg.TARGET.NAME, cfg.TARGET.REMOTE.URL, cfg.TARGET.REMOTE.MODEL = "remote", url, MODEL
    for key, value in remote.items():
        setattr(cfg.TARGET.REMOTE, key, value)
    return cfg


@pytest.mark.parametrize("source", ["TOKEN_ENV", "TOKEN_FILE", None])
def test_the_token_reaches_the_server_as_a_bearer_header(capture, tmp_path, monkeypatch, source):
    if source == "TOKEN_ENV":
        monkeypatch.setenv("BBVP_TEST_TOKEN", TOKEN)
        cfg = remote_cfg(capture.url, TOKEN_ENV="BBVP_TEST_TOKEN")
    elif source == "TOKEN_FILE":
        (tmp_path / "token").write_text(TOKEN + "\n")
        cfg = remote_cfg(capture.url, TOKEN_FILE=str(tmp_path / "token"))
    else:
        cfg = remote_cfg(capture.url)
    target = RemoteTarget.from_cfg(cfg, CLASSES, "cpu")
    target(torch.rand(2, 3, 8, 8))
    assert [(method, path) for _, method, path, _ in capture.seen] == [
        ("GET", f"/v2/models/{MODEL}"),
        ("POST", f"/v2/models/{MODEL}/infer"),
    ]
    expected = f"Bearer {TOKEN}" if source else None
    assert all(headers.get("Authorization") == expected for *_, headers in capture.seen)
    assert TOKEN not in str(cfg) and TOKEN not in target.describe()


def test_a_model_version_is_addressed_in_the_url_path(capture):
    target = RemoteTarget(CLASSES, url=capture.url + "/", model=MODEL, version="3")
    target(torch.rand(1, 3, 8, 8))
    assert [path for _, _, path, _ in capture.seen] == [
        f"/v2/models/{MODEL}/versions/3",
        f"/v2/models/{MODEL}/versions/3/infer",
    ]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_requests_are_paced_to_rate_rps(capture, concurrency):
    target = RemoteTarget(CLASSES, url=capture.url, model=MODEL, rate_rps=5, max_batch=1, concurrency=concurrency)
    start = time.monotonic()
    target(torch.rand(6, 3, 8, 8))
    assert time.monotonic() - start >= 0.9  # six requests at five a second: the last leaves a second after the first
    assert len(capture.seen) == 1 + 6


def test_images_are_paced_to_rate_ips(capture):
    target = RemoteTarget(CLASSES, url=capture.url, model=MODEL, rate_ips=4, max_batch=2)
    start = time.monotonic()
    target(torch.rand(6, 3, 8, 8))
    assert time.monotonic() - start >= 0.9  # three requests of two images at four images a second
    assert len(capture.seen) == 1 + 3
