"""A model behind an HTTP endpoint as a black-box target, spoken to with the Open Inference Protocol (KServe V2).

Before the first query the target reads the model's metadata (``GET {URL}/v2/models/{MODEL}``) and checks its
input (``[-1, 3, S, S]`` FP32) and its number of outputs against the config. Each call is one
``POST .../infer`` carrying at most ``TARGET.MAX_BATCH`` images as a JSON FP32 tensor. The remote model receives
**pixels in [0, 1]** (RGB, ``(N, 3, S, S)``, resized bicubically to its declared ``S``); it applies its own
normalisation, as the local target with the same weights would. Tensors are written with orjson, which prints each
float32 as the shortest decimal that reads back to the same float32 (about 10 bytes a value), so the JSON round trip
is exact in both directions.

Calls run ``TARGET.REMOTE.CONCURRENCY`` at a time and are paced to ``RATE_RPS`` requests and ``RATE_IPS`` images
per second. Timeouts, dropped connections, 429 (its ``Retry-After`` honoured) and 5xx answers are retried with
exponential backoff and jitter; answers are put back in request order, so a retry never changes a result.
``counter`` counts the images of accepted requests (what a provider bills); ``retries`` counts the resent ones.
``TARGET.REMOTE.QUERY_LOG`` names a JSONL file that gets one line per inference attempt, to audit a bill against.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import orjson
import torch

from dassl.config import CfgNode
from dassl.engine import ResumableError
from trainers.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, ConfigKey, declare_keys

from .base import Target, common_target_args, register_target
from .label_map import NUM_IMAGENET_CLASSES, SEMANTIC_TEMPERATURE, IndexMap, SemanticMap

REMOTE_LABEL_MAPS = ("as_is", "index", "semantic")
PIXELS_MEAN = (0.0, 0.0, 0.0)
PIXELS_STD = (1.0, 1.0, 1.0)
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
_RETRY_STATUS = {429, 500, 502, 503, 504}
_MAX_BACKOFF_S = 30.0
_T = TypeVar("_T")

KEYS = declare_keys(
    "TARGET.REMOTE",
    ConfigKey("URL", "", "base URL of the inference server, e.g. http://127.0.0.1:8080", result=False),
    ConfigKey("MODEL", "", "model name on the server (the {MODEL} of /v2/models/{MODEL}/infer)"),
    ConfigKey("VERSION", "", "model version on the server (empty: the server's default)"),
    ConfigKey("TIMEOUT_S", 60.0, "seconds to wait for one answer before retrying", valid=POSITIVE, result=False),
    ConfigKey("RETRIES", 5, "resends of a failed request before the run stops", valid=NON_NEGATIVE, result=False),
    ConfigKey(
        "BACKOFF_S",
        0.5,
        "first retry delay in seconds, doubled per retry, with jitter (a Retry-After answer waits longer)",
        valid=NON_NEGATIVE,
        result=False,
    ),
    ConfigKey("CONCURRENCY", 1, "requests in flight at once", valid=AT_LEAST_ONE, result=False),
    ConfigKey("RATE_RPS", 0.0, "most requests per second (0 = unlimited)", valid=NON_NEGATIVE, result=False),
    ConfigKey("RATE_IPS", 0.0, "most images per second (0 = unlimited)", valid=NON_NEGATIVE, result=False),
    ConfigKey(
        "TOKEN_ENV", "", "environment variable holding the bearer token (its name, never the token)", result=False
    ),
    ConfigKey("TOKEN_FILE", "", "file holding the bearer token (its path, never the token)", result=False),
    ConfigKey(
        "QUERY_LOG",
        "",
        "JSONL file appended with one line per inference attempt (time, split, images, latency, status, billed); "
        "empty = off",
        result=False,
    ),
    ConfigKey(
        "LABEL_MAP",
        "as_is",
        "how the server's outputs map to the downstream classes: as_is (one output per downstream class, in order), "
        "index or semantic (as TARGET.CLASSIFIER.LABEL_MAP; semantic needs 1000 ImageNet outputs)",
        choices=REMOTE_LABEL_MAPS,
    ),
    ConfigKey("INDICES", [], "index map: the server output read for each downstream class (empty: 0..C-1)"),
    ConfigKey("TEMPERATURE", SEMANTIC_TEMPERATURE, "semantic map: sharpness of the class-name similarity softmax"),
)


class RemoteTargetError(RuntimeError):
    """The endpoint is unreachable, refuses the request, or answers something that is not the expected logits."""


class EndpointDown(RemoteTargetError, ResumableError):
    """The endpoint did not answer within the retries: a training step stops the run after checkpointing the state
    from before that step, so the same command resumes exactly once the endpoint is back."""


class _Pacer:
    """Spaces request starts so that at most ``rps`` requests and ``ips`` images leave per second (0: no limit)."""

    def __init__(self, rps: float, ips: float):
        self.rps, self.ips = float(rps), float(ips)
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, images: int) -> None:
        gap = max(1.0 / self.rps if self.rps > 0 else 0.0, images / self.ips if self.ips > 0 else 0.0)
        if gap == 0.0:
            return
        with self._lock:
            start = max(time.monotonic(), self._next)
            self._next = start + gap
        time.sleep(max(0.0, start - time.monotonic()))


def read_token(env: str = "", file: str = "") -> str:
    """The bearer token from the named environment variable or file ("" when neither is named)."""
    if env and file:
        raise ValueError("Set one of TARGET.REMOTE.TOKEN_ENV and TARGET.REMOTE.TOKEN_FILE, not both")
    if env:
        token = os.environ.get(env, "")
        if not token:
            raise ValueError(f"TARGET.REMOTE.TOKEN_ENV names {env}, but that environment variable is empty or unset")
        return token.strip()
    if file:
        path = Path(file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"TARGET.REMOTE.TOKEN_FILE {path} does not exist")
        return path.read_text().strip()
    return ""


class QueryLog:
    """Append-only JSONL record of inference attempts, one line each, written whole under a lock (requests run
    concurrently) and flushed per line, so a bill can be checked against it even after a crash.

    A line holds the UTC time, the endpoint, the split, the images sent, the latency in seconds, the HTTP status
    (or the exception name of a timeout or dropped connection), the attempt number (1 = first send) and whether
    the answer was accepted and counted (``billed``). Headers, and so the token, are never written."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def write(
        self, endpoint: str, split: str, images: int, latency_s: float, status: int | str, attempt: int, billed: bool
    ) -> None:
        line = json.dumps(
            {
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "endpoint": endpoint,
                "split": split,
                "images": images,
                "latency_s": round(latency_s, 6),
                "status": status,
                "attempt": attempt,
                "billed": billed,
            }
        )
        with self._lock:
            self._file.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _without_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part, fit for a log."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _requests_session() -> Any:
    import requests

    return requests.Session()


@register_target("remote")
class RemoteTarget(Target):
    """A served model reached over HTTP (Open Inference Protocol); its outputs mapped to the downstream classes
    as they are (``as_is``), by index or by meaning. ``retries`` counts resent requests."""

    def __init__(
        self,
        classnames: list[str],
        url: str,
        model: str,
        version: str = "",
        label_map: str = "as_is",
        indices: Sequence[int] = (),
        temperature: float = SEMANTIC_TEMPERATURE,
        timeout_s: float = 60.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        concurrency: int = 1,
        rate_rps: float = 0.0,
        rate_ips: float = 0.0,
        token: str = "",
        query_log: str | Path = "",
        session_factory: Callable[[], Any] = _requests_session,
        **kwargs,
    ):
        if not url or not model:
            raise ValueError("TARGET.NAME remote needs TARGET.REMOTE.URL (e.g. http://127.0.0.1:8080) and .MODEL")
        if label_map not in REMOTE_LABEL_MAPS:
            raise ValueError(f"TARGET.REMOTE.LABEL_MAP must be one of {REMOTE_LABEL_MAPS}, got {label_map!r}")
        super().__init__(classnames, model_mean=PIXELS_MEAN, model_std=PIXELS_STD, **kwargs)
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "")
        self.endpoint = url.rstrip("/") + path
        self.timeout_s, self.max_retries, self.backoff_s = float(timeout_s), int(retries), float(backoff_s)
        self.concurrency = int(concurrency)
        self.retries = 0
        self._pacer = _Pacer(rate_rps, rate_ips)
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session_factory = session_factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._jitter = random.Random()  # private: jitter must not draw from the run's seeded generators
        self._pool: ThreadPoolExecutor | None = None
        self.query_log = QueryLog(query_log) if query_log else None
        self.num_outputs, self.server_labels = self._read_metadata()
        self._map = self._build_map(label_map, indices, temperature)

    @classmethod
    def example(cls) -> RemoteTarget:
        """A LeNet-5 served in-process by ``LoopbackSession``: the protocol without a network or a server."""
        from .classifier import ClassifierTarget

        served = ClassifierTarget(
            [str(d) for d in range(10)],
            arch="lenet5-mnist",
            label_map="index",
            input_mean=PIXELS_MEAN,
            input_std=PIXELS_STD,
        )
        return cls(
            served.classnames, url="loopback://", model="lenet5", session_factory=lambda: LoopbackSession(served)
        )

    @classmethod
    def from_cfg(cls, cfg: CfgNode, classnames: list[str], device: str | torch.device) -> RemoteTarget:
        """``TARGET.REMOTE.*``; the token is read here from the variable or file the config names."""
        r = cfg.TARGET.REMOTE
        return cls(
            classnames,
            url=r.URL,
            model=r.MODEL,
            version=r.VERSION,
            label_map=r.LABEL_MAP,
            indices=list(r.INDICES),
            temperature=float(r.TEMPERATURE),
            timeout_s=float(r.TIMEOUT_S),
            retries=int(r.RETRIES),
            backoff_s=float(r.BACKOFF_S),
            concurrency=int(r.CONCURRENCY),
            rate_rps=float(r.RATE_RPS),
            rate_ips=float(r.RATE_IPS),
            token=read_token(r.TOKEN_ENV, r.TOKEN_FILE),
            query_log=r.QUERY_LOG,
            **common_target_args(cfg, device),
        )

    def describe(self) -> str:
        return (
            f"remote model at {self.endpoint} ({self.input_size}px [0, 1] pixels in, {self.num_outputs} outputs), "
            f"{self._map_title}, {self.num_classes} classes"
        )

    def logits_with_input_grad(self, images: torch.Tensor, split: str = "train") -> torch.Tensor:
        raise RemoteTargetError(
            f"The remote target {self.endpoint} returns no gradients; white-box methods (VPWB) need a local target"
        )

    def accounting(self) -> dict[str, Any]:
        """As for every target, plus the requests resent after a failure (not billed)."""
        return {**super().accounting(), "retries": int(self.retries)}

    def _move(self, device: torch.device) -> None:
        self._map.to(device)

    def _query(self, images: torch.Tensor, split: str) -> torch.Tensor:
        """As ``Target._query`` (budget checked before anything is sent), with the calls ``concurrency`` at a time;
        answers are concatenated in request order and each accepted request is counted."""
        self._check(images)
        if len(images) == 0:
            return images.new_zeros((0, self.num_classes), dtype=torch.float32)
        self.budget.check(self.counter, split, len(images))
        chunks = [self._prepare(c) for c in images.split(self.max_batch or len(images))]
        if self.concurrency == 1 or len(chunks) == 1:
            out = []
            for chunk in chunks:
                out.append(self._infer(chunk, split))
                self.counter.add(split, len(chunk), calls=1)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="remote-target")
            futures = [self._pool.submit(self._infer, chunk, split) for chunk in chunks]
            errors = [f.exception() for f in futures]
            for chunk, error in zip(chunks, errors, strict=True):
                if error is None:
                    self.counter.add(split, len(chunk), calls=1)
            failed = next((e for e in errors if e is not None), None)
            if failed is not None:
                raise failed
            out = [f.result() for f in futures]
        return self._map(torch.cat(out).to(self.device)).float().to(images.device)

    # ------------------------------------------------------------ protocol

    def _read_metadata(self) -> tuple[int, list[str]]:
        """Check the served model's input and output tensors; returns its output count and labels (if published)."""
        meta = self._send("GET", self.endpoint, None, lambda r: self._json(r, "model metadata"))
        inputs, outputs = meta.get("inputs") or [], meta.get("outputs") or []
        if len(inputs) != 1 or len(outputs) < 1:
            raise RemoteTargetError(
                f"{self.endpoint} declares {len(inputs)} inputs and {len(outputs)} outputs; this target needs one "
                "image input and a logits output"
            )
        shape, dtype = list(inputs[0].get("shape", [])), inputs[0].get("datatype")
        if dtype != "FP32" or len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3] or shape[2] <= 0:
            raise RemoteTargetError(
                f"{self.endpoint} says its input {inputs[0].get('name')!r} is {dtype} of shape {shape}; this target "
                "sends FP32 images of shape [-1, 3, S, S] (RGB pixels in [0, 1])"
            )
        self.input_size = int(shape[2])
        out_shape = list(outputs[0].get("shape", []))
        if len(out_shape) != 2 or out_shape[1] <= 0:
            raise RemoteTargetError(f"{self.endpoint} says its output has shape {out_shape}; expected [-1, classes]")
        labels = list((outputs[0].get("parameters") or {}).get("labels") or [])
        return int(out_shape[1]), [str(x) for x in labels]

    def _build_map(self, kind: str, indices: Sequence[int], temperature: float) -> Any:
        """The map from the server's outputs to the downstream classes, checked against the metadata."""
        served = f"{self.endpoint} serves {self.num_outputs} classes"
        if kind == "as_is":
            if self.num_outputs != self.num_classes:
                raise RemoteTargetError(
                    f"{served}, but the config expects {self.num_classes} downstream classes with "
                    "TARGET.REMOTE.LABEL_MAP as_is; serve the downstream classes or use LABEL_MAP index"
                )
            if self.server_labels and self.server_labels != self.classnames:
                raise RemoteTargetError(
                    f"{served} named {self.server_labels}, but the config's classes are {self.classnames}"
                )
            self._map_title = "outputs as downstream classes"
            return _Identity()
        if kind == "index":
            self._map_title = "index label map"
            return IndexMap(self.num_classes, indices, num_outputs=self.num_outputs, label_space="server output")
        if self.num_outputs != NUM_IMAGENET_CLASSES:
            raise RemoteTargetError(
                f"{served}; TARGET.REMOTE.LABEL_MAP semantic expects the {NUM_IMAGENET_CLASSES} ImageNet-1k classes"
            )
        semantic = SemanticMap(self.classnames, temperature)
        self._map_title = semantic.describe()
        return semantic

    def _infer(self, pixels: torch.Tensor, split: str = "") -> torch.Tensor:
        """One inference request for a ready batch; (N, num_outputs) float32 logits on CPU."""
        n = len(pixels)
        x = pixels.detach().to("cpu", torch.float32).contiguous().numpy()
        tensor = {"name": INPUT_NAME, "shape": list(x.shape), "datatype": "FP32", "data": x.reshape(-1)}
        body = orjson.dumps({"inputs": [tensor]}, option=orjson.OPT_SERIALIZE_NUMPY)  # shortest exact float32 forms
        self._pacer.wait(n)
        return self._send(
            "POST",
            self.endpoint + "/infer",
            body,
            lambda r: self._logits_from(self._json(r, "an inference answer"), n),
            split=split,
            images=n,
        )

    def _logits_from(self, answer: dict, n: int) -> torch.Tensor:
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        if not outputs:
            raise RemoteTargetError(f"{self.endpoint} answered without outputs: {str(answer)[:200]}")
        out = next((o for o in outputs if o.get("name") == OUTPUT_NAME), outputs[0])
        expected = [n, self.num_outputs]
        try:
            values = np.asarray(out.get("data"), dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise RemoteTargetError(f"{self.endpoint} answered logits that are not numbers: {err}") from None
        if list(out.get("shape", [])) != expected or values.size != n * self.num_outputs:
            raise RemoteTargetError(
                f"{self.endpoint} answered logits of shape {out.get('shape')} ({values.size} values) for {n} images; "
                f"expected {expected} (the {self.num_outputs} classes its metadata declares)"
            )
        if not np.isfinite(values).all():
            raise RemoteTargetError(f"{self.endpoint} answered non-finite logits (NaN or inf) for {n} images")
        return torch.from_numpy(values.reshape(expected).copy())

    def _json(self, response: Any, what: str) -> dict:
        try:
            return json.loads(response.content)  # answers are small; json reads the NaN that servers write
        except ValueError:
            raise RemoteTargetError(
                f"{self.endpoint} sent {what} that is not JSON: {response.content[:200]!r}"
            ) from None

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        read: Callable[[Any], _T],
        split: str = "",
        images: int = 0,
    ) -> _T:
        """``read`` of the answer to a successful request, resending on timeouts, dropped connections, 429 and 5xx.
        Inference attempts (``images`` > 0) go to the query log; billed when ``read`` accepts the answer."""
        import requests

        last = ""
        for attempt in range(self.max_retries + 1):
            wait = self._backoff(attempt)
            started = time.monotonic()
            try:
                response = self._session().request(
                    method, url, data=body, headers=self._headers, timeout=self.timeout_s
                )
            except (requests.Timeout, requests.ConnectionError) as err:
                self._log(split, images, time.monotonic() - started, type(err).__name__, attempt, billed=False)
                last = f"{type(err).__name__}: {err}"
            else:
                latency, status = time.monotonic() - started, response.status_code
                if status < 300:
                    try:
                        result = read(response)
                    except RemoteTargetError:
                        self._log(split, images, latency, status, attempt, billed=False)
                        raise
                    self._log(split, images, latency, status, attempt, billed=True)
                    return result
                self._log(split, images, latency, status, attempt, billed=False)
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in _RETRY_STATUS:
                    raise RemoteTargetError(f"{url} refused the request ({last})")
                wait = max(wait, _retry_after(response.headers.get("Retry-After")))
            if attempt < self.max_retries:
                with self._lock:
                    self.retries += 1
                time.sleep(wait)
        raise EndpointDown(
            f"{url} did not answer after {self.max_retries + 1} attempts (last: {last}). Check that the server is up "
            "(GET /v2/health/ready) or raise TARGET.REMOTE.RETRIES / TIMEOUT_S."
        )

    def _log(self, split: str, images: int, latency: float, status: int | str, attempt: int, billed: bool) -> None:
        if self.query_log is not None and images > 0:
            endpoint = _without_userinfo(self.endpoint)
            self.query_log.write(endpoint, split, images, latency, status, attempt + 1, billed)

    def _backoff(self, attempt: int) -> float:
        """Exponential delay before resend ``attempt + 1``, with full jitter on its upper half."""
        delay = min(_MAX_BACKOFF_S, self.backoff_s * 2**attempt)
        return delay * (0.5 + 0.5 * self._jitter.random())

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._session_factory()
        return session


class _Identity:
    """The ``as_is`` label map: the server already answers in the downstream classes."""

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def to(self, device: torch.device) -> _Identity:
        return self


def _retry_after(value: str | None) -> float:
    """Seconds asked by a ``Retry-After`` header (delta-seconds form; 0 when absent or a date)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


# ---------------------------------------------------------------- serving side of the protocol


def model_metadata(target: Target, name: str) -> dict:
    """V2 metadata of ``target`` served as ``name``: [0, 1] pixel input, logits over its classes (labels listed)."""
    side = target.input_size
    return {
        "name": name,
        "platform": "bbvp",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 3, side, side]}],
        "outputs": [
            {
                "name": OUTPUT_NAME,
                "datatype": "FP32",
                "shape": [-1, target.num_classes],
                "parameters": {"labels": list(target.classnames)},
            }
        ],
    }


def infer_outputs(target: Target, shape: Sequence[int], data: Any) -> dict:
    """The V2 ``outputs`` entry answering FP32 pixels ``data`` of ``shape`` with ``target``'s logits.

    ``target`` must read [0, 1] pixels (built with ``input_mean`` 0 and ``input_std`` 1)."""
    if len(shape) != 4 or shape[1] != 3:
        raise ValueError(f"expected an input of shape [N, 3, H, W], got {list(shape)}")
    pixels = torch.from_numpy(np.asarray(data, dtype=np.float32).reshape(list(shape)))
    logits = target(pixels, split="served").float()
    return {
        "name": OUTPUT_NAME,
        "datatype": "FP32",
        "shape": list(logits.shape),
        "data": logits.reshape(-1).tolist(),  # doubles that hold the float32 values exactly
    }


class LoopbackSession:
    """A stand-in for ``requests.Session`` that answers V2 requests with a local target, in-process (no network)."""

    def __init__(self, served: Target, name: str = "lenet5"):
        self.served, self.name = served, name

    def request(self, method: str, url: str, data: bytes | None = None, **_: Any) -> _Answer:
        if method == "GET":
            return _Answer(json.dumps(model_metadata(self.served, self.name)).encode())
        first = orjson.loads(data or b"{}")["inputs"][0]
        outputs = infer_outputs(self.served, first["shape"], first["data"])
        return _Answer(json.dumps({"model_name": self.name, "outputs": [outputs]}).encode())


class _Answer:
    def __init__(self, content: bytes, status_code: int = 200):
        self.content, self.status_code, self.headers = content, status_code, {}
        self.text = content.decode()
