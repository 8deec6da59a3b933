"""Serve any built-in target behind MLServer, speaking the Open Inference Protocol (KServe V2) over HTTP.

    python -m scripts.serve_target --config-file configs/trainers/VPOUR/vit_b16.yaml --classes "cat,dog" --port 8080 \
        TARGET.NAME classifier TARGET.CLASSIFIER.ARCH lenet5-mnist TARGET.CLASSIFIER.LABEL_MAP index

The served model reads RGB pixels in [0, 1] of shape ``[-1, 3, S, S]`` (``S``: the target's input size) and
answers FP32 logits over ``--classes``, whose names its metadata lists, so ``TARGET.NAME remote`` with
``TARGET.REMOTE.LABEL_MAP as_is`` reads them as the downstream classes. Needs ``pip install -r
requirements-serve.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dassl.config import CfgNode, get_cfg_default
from trainers.config import extend_cfg, validate_cfg
from trainers.targets import Target, build_target
from trainers.targets.remote import PIXELS_MEAN, PIXELS_STD, infer_outputs, model_metadata

try:
    from mlserver import MLModel, MLServer
    from mlserver.errors import InferenceError
    from mlserver.settings import ModelParameters, ModelSettings, Settings
    from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, ResponseOutput
except ModuleNotFoundError as err:
    raise SystemExit(f"Serving a target needs MLServer ({err}): pip install -r requirements-serve.txt") from err


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default="", help="trainer config file (its TARGET.* keys pick the model)")
    parser.add_argument("--dataset-config-file", default="", help="dataset config file (CLIP: the prompt template)")
    parser.add_argument(
        "--classes", required=True, help="the class names the model answers, comma-separated, or @FILE (one a line)"
    )
    parser.add_argument("--model-name", default="target", help="the {MODEL} of /v2/models/{MODEL}/infer")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port MLServer also opens (0: a free one)")
    parser.add_argument("--device", default="cpu", help="device of the served model (cpu, cuda, cuda:1)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs, as for train.py")
    return parser.parse_args(argv)


def read_classes(spec: str) -> list[str]:
    """Class names from ``a,b,c`` or from ``@FILE`` (one name a line)."""
    if spec.startswith("@"):
        names = Path(spec[1:]).read_text().splitlines()
    else:
        names = spec.split(",")
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ValueError(f"--classes {spec!r} names no class")
    return names


def served_cfg(args: argparse.Namespace) -> CfgNode:
    """The config of the served target: defaults, the two config files, the KEY VALUE pairs, and [0, 1] pixel input."""
    cfg = extend_cfg(get_cfg_default())
    for path in (args.dataset_config_file, args.config_file):
        if path:
            cfg.merge_from_file(path)
    cfg.merge_from_list(args.opts or [])
    if cfg.TARGET.NAME == "remote":
        raise ValueError("TARGET.NAME remote cannot be served; choose a local target (clip, classifier, ...)")
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = list(PIXELS_MEAN), list(PIXELS_STD)
    cfg.TARGET.BUDGET_IMAGES, cfg.TARGET.BUDGET_USD = 0, 0.0  # budgets are the client's business
    validate_cfg(cfg)
    cfg.freeze()
    return cfg


def build_served_target(args: argparse.Namespace) -> Target:
    """The local target named by the config, reading [0, 1] pixels."""
    return build_target(served_cfg(args), read_classes(args.classes), args.device)


class TargetRuntime(MLModel):
    """MLServer runtime wrapping a target; built from the serve command's arguments (``parameters.extra.argv``)."""

    async def load(self) -> bool:
        argv = list(self.settings.parameters.extra["argv"])
        self._target = build_served_target(parse_args(argv))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="served-target")  # one model call at a time
        return True

    async def metadata(self) -> MetadataModelResponse:
        return MetadataModelResponse(**model_metadata(self._target, self.name))

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if len(payload.inputs) != 1 or payload.inputs[0].datatype != "FP32":
            raise InferenceError("expected one FP32 input of RGB pixels in [0, 1], shape [N, 3, S, S]")
        first = payload.inputs[0]
        try:
            out = await asyncio.get_running_loop().run_in_executor(
                self._pool, infer_outputs, self._target, first.shape, first.data.root
            )
        except ValueError as err:
            raise InferenceError(str(err)) from None
        return InferenceResponse(model_name=self.name, id=payload.id, outputs=[ResponseOutput(**out)])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    served_cfg(args)  # refuse a wrong config before the server starts
    read_classes(args.classes)
    settings = Settings(
        host=args.host,
        http_port=args.port,
        grpc_port=args.grpc_port or free_port(args.host),
        metrics_endpoint=None,
        parallel_workers=0,
        debug=False,
    )
    model = ModelSettings(
        name=args.model_name,
        implementation="scripts.serve_target.TargetRuntime",
        parameters=ModelParameters(extra={"argv": argv}),
    )
    asyncio.run(MLServer(settings).start(models_settings=[model]))


if __name__ == "__main__":
    main()
