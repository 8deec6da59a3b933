"""Remote target over HTTP against the same target in-process: images per second and their ratio per call.

Each target is served by ``python -m scripts.serve_target`` on 127.0.0.1 (loopback, same machine) and reached
with ``TARGET.NAME remote``; the in-process side is the very target the server builds, reading the same [0, 1]
pixels. One call queries ``--chunks`` x ``max_batch`` images, so it makes that many requests, sent
``TARGET.REMOTE.CONCURRENCY`` at a time; each side's time is its best call. The two sides are timed alternately in
one process; the wire bytes per image (JSON request and answer bodies) are counted on the client's HTTP session.

    python -m bench.remote [--concurrency 1 2 4] [--max-batch 8 32 128] [--clip-max-batch 4 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Any

import requests
import torch
from tabulate import tabulate

from bench.harness import EUROSAT_CLASSES, REPO, machine, write_json
from scripts.serve_target import build_served_target, free_port, parse_args
from trainers.targets import RemoteTarget, Target
from trainers.targets.remote import PIXELS_MEAN, PIXELS_STD

OUT = osp.join(osp.dirname(osp.abspath(__file__)), "results", "remote.json")
DIGITS = [str(d) for d in range(10)]
IN_PROCESS_PER_REMOTE = 3
SERVED = {
    "LeNet-5 (28 px)": (
        DIGITS,
        ["TARGET.NAME", "classifier", "TARGET.CLASSIFIER.ARCH", "lenet5-mnist", "TARGET.CLASSIFIER.LABEL_MAP", "index"],
    ),
    "tiny CLIP ViT (224 px)": (EUROSAT_CLASSES, ["DATASET.NAME", "EuroSAT", "MODEL.BACKBONE.NAME", "tiny-vit"]),
}


class CountingSession(requests.Session):
    """A requests session that adds up the bytes of request and answer bodies (the JSON tensors)."""

    sent = 0
    received = 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        data = kwargs.get("data")
        CountingSession.sent += len(data) if data else 0
        CountingSession.received += len(response.content)
        return response


def serve(argv: list[str], log_path: str) -> tuple[subprocess.Popen, str]:
    """Start ``scripts.serve_target`` on a free loopback port; returns the process and its URL once ready."""
    port = free_port()
    cmd = [sys.executable, "-m", "scripts.serve_target", "--port", str(port), *argv]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if requests.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            with open(log_path) as log:
                raise RuntimeError(f"the model server did not become ready:\n{log.read()[-3000:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def timed(target: Target, images: torch.Tensor) -> float:
    start = time.perf_counter()
    target(images, split="test")
    return time.perf_counter() - start


def measure(local: Target, remote: RemoteTarget, images: torch.Tensor, repeats: int) -> dict:
    """Best call time of each side on the same images (after a one-request warm-up each), and the wire bytes.

    The best of several rather than the median: on a shared CPU other work only ever adds time, and the short
    in-process calls suffer most, so each remote call is followed by ``IN_PROCESS_PER_REMOTE`` in-process ones."""
    local(images[: remote.max_batch], split="test")
    remote(images[: remote.max_batch], split="test")
    CountingSession.sent = CountingSession.received = 0
    locals_, remotes = [], []
    for _ in range(repeats):
        remotes.append(timed(remote, images))
        locals_.extend(timed(local, images) for _ in range(IN_PROCESS_PER_REMOTE))
    n = len(images) * repeats
    local_s, remote_s = min(locals_), min(remotes)
    return {
        "images_per_call": len(images),
        "in_process_s": local_s,
        "remote_s": remote_s,
        "in_process_ips": len(images) / local_s,
        "remote_ips": len(images) / remote_s,
        "ratio": remote_s / local_s,
        "in_process_times_s": locals_,
        "remote_times_s": remotes,
        "bytes_sent_per_image": CountingSession.sent / n,
        "bytes_received_per_image": CountingSession.received / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4], help="TARGET.REMOTE.CONCURRENCY")
    parser.add_argument("--max-batch", type=int, nargs="+", default=[8, 32, 128], help="LeNet-5 images per request")
    parser.add_argument(
        "--clip-max-batch",
        type=int,
        nargs="+",
        default=[4, 16],
        help="tiny CLIP images per request (a 224 px image is about 1.6 MB of JSON, so 128 is slow on a small CPU)",
    )
    parser.add_argument("--chunks", type=int, default=4, help="requests per call (images per call / max_batch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench-remote-")
    rows, results = [], []
    for name, (classes, opts) in SERVED.items():
        argv = ["--classes", ",".join(classes), "--model-name", "target", *opts]
        proc, url = serve(argv, osp.join(work, f"server-{len(results)}.log"))
        try:
            batches = args.max_batch if name.startswith("LeNet") else args.clip_max_batch
            for max_batch in batches:
                local = build_served_target(parse_args([*argv, "TARGET.MAX_BATCH", str(max_batch)]))
                size = local.input_size
                images = torch.rand(args.chunks * max_batch, 3, size, size, generator=torch.Generator().manual_seed(0))
                for concurrency in args.concurrency:
                    remote = RemoteTarget(
                        classes,
                        url=url,
                        model="target",
                        max_batch=max_batch,
                        concurrency=concurrency,
                        input_mean=PIXELS_MEAN,
                        input_std=PIXELS_STD,
                        session_factory=CountingSession,
                    )
                    r = {"target": name, "max_batch": max_batch, "concurrency": concurrency}
                    r.update(measure(local, remote, images, args.repeats))
                    results.append(r)
                    rows.append(
                        [
                            name,
                            max_batch,
                            concurrency,
                            r["images_per_call"],
                            f"{r['in_process_ips']:,.0f}",
                            f"{r['remote_ips']:,.0f}",
                            f"{r['ratio']:.1f}",
                            f"{r['bytes_sent_per_image']:,.0f}",
                            f"{r['bytes_received_per_image']:,.0f}",
                        ]
                    )
                    print(tabulate(rows[-1:], tablefmt="plain"), flush=True)
        finally:
            stop(proc)
    headers = [
        "target",
        "images/request",
        "concurrency",
        "images/call",
        "in-process img/s",
        "remote img/s",
        "remote/in-process time",
        "bytes sent/img",
        "bytes received/img",
    ]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    write_json({"machine": machine(), "server": "127.0.0.1, same machine", "results": results}, args.out)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
