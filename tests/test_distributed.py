"""One run over several processes (``torchrun --nproc_per_node 2``, gloo on CPU) trains as one process does.

Tolerance: none. Each process renders every perturbed point (the prompter's per-point work does not depend on the
other points) and sends only its share; with ``TARGET.MAX_BATCH`` equal to the mini-batch, every target call holds
one point's images in both runs, so each logit, loss, update and batch-norm statistic is computed from the same
numbers in the same order, and parameters, optimiser state, accuracy and query counts are equal bit for bit.
(With calls that pack several points, a call's composition differs between the runs and the target's batched
arithmetic may differ in the last bits.) Both runs use one intra-op thread, as torchrun gives each worker.
"""

import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

import train
from dassl.engine import ResumableError
from dassl.utils import load_checkpoint
from tests.helpers.toy_data import make_coop_dataset
from trainers.config import ConfigError
from trainers.distributed import PointShards
from trainers.targets import QueryCounter

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = ["annual crop", "forest", "river", "sea"]
CONFIGS = osp.join(REPO, "configs", "trainers")
BATCH = 4

METHODS = {
    # trainer: (config, options, checkpoint folder, points per step)
    "BLACKVIP": (
        "BLACKVIP/vit_b16.yaml",
        ["TRAINER.BLACKVIP.PT_BACKBONE", "tiny-vit", "TRAINER.BLACKVIP.SP_AVG", 2],
        "coordinator",
        4,
    ),
    "VPOUR": ("VPOUR/vit_b16.yaml", ["TRAINER.VPOUR.SP_AVG", 2], "prompter", 4),
    "BAR": ("BAR/vit_b16.yaml", ["INPUT.SIZE", "[194,194]", "TRAINER.BAR.SP_AVG", 2], "program", 3),
}


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_coop_dataset(str(root), "toy_coop", "split_zhou_ToyCoOp.json", CLASSES, n_train=4, n_val=1, n_test=3)
    (root / "toy.yaml").write_text("DATASET:\n  NAME: ToyCoOp\n")
    return root


def train_args(method, root, out, *opts):
    config, method_opts, _, _ = METHODS[method]
    fixed = [
        "DATALOADER.NUM_WORKERS",
        0,
        "DATALOADER.TRAIN_X.BATCH_SIZE",
        BATCH,
        "DATALOADER.TEST.BATCH_SIZE",
        12,
        "MODEL.BACKBONE.NAME",
        "tiny-vit",
        "TRAIN.PRINT_FREQ",
        1,
        "TARGET.MAX_BATCH",
        BATCH,
    ]
    return [
        *("--root", str(root), "--seed", "1", "--trainer", method),
        *("--dataset-config-file", str(root / "toy.yaml"), "--config-file", osp.join(CONFIGS, config)),
        *("--output-dir", str(out)),
        *[str(o) for o in fixed + method_opts + list(opts)],
    ]


def command(processes, args):
    if processes == 1:
        return [sys.executable, osp.join(REPO, "train.py"), *args]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    return [*launcher, osp.join(REPO, "train.py"), *args]


def run_side_by_side(*commands, expect=(0,), plugins=()):
    """Start every command at once (they share the machine's cores) and wait for all; fail with their stderr unless
    they exit with ``expect`` (one status per command, or one for all)."""
    env = {
        **os.environ,
        "PYTHONPATH": REPO,
        "BBVP_PLUGINS": os.pathsep.join(["tests.plugins.coop_style", *plugins]),
        "OMP_NUM_THREADS": "1",
    }
    procs = [
        subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    statuses = expect * len(commands) if len(expect) == 1 else expect
    for cmd, proc, (out, err), status in zip(commands, procs, outputs, statuses, strict=True):
        assert proc.returncode == status, f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-3000:]}\n{err[-3000:]}"
    return outputs


def files_under(folder):
    """Relative paths of the files a run wrote; TensorBoard's event files by kind (their names hold time and pid)."""
    return sorted(
        osp.relpath(osp.join(d, "events.out.tfevents" if name.startswith("events.out.tfevents") else name), folder)
        for d, _, names in os.walk(folder)
        for name in names
        if name != ".lock"
    )


def assert_same_state(a, b):
    """Same learned values and buffers, and the same optimiser state (step, generator, momentum)."""
    a, b = load_checkpoint(str(a)), load_checkpoint(str(b))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for key, value in a["optimizer"].items():
        other = b["optimizer"][key]
        assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other, key


def results(folder):
    return json.loads((folder / "results.json").read_text())


SAME_RESULT = ("accuracy", "macro_f1", "error", "queries", "steps", "stopped_by", "learnable_parameters")


@pytest.mark.parametrize("method", list(METHODS))
def test_two_processes_train_as_one(method, toy_root, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    opts = ("OPTIM.MAX_EPOCH", 2)
    run_side_by_side(
        command(1, train_args(method, toy_root, one, *opts)), command(2, train_args(method, toy_root, two, *opts))
    )
    _, _, folder, points = METHODS[method]
    assert_same_state(one / folder / "model.pth.tar-2", two / folder / "model.pth.tar-2")
    single, double = results(one), results(two)
    for key in SAME_RESULT:
        assert single[key] == double[key], key
    steps = 2 * len(CLASSES) * 4 // BATCH
    assert double["queries"]["train"] == {"images": steps * points * BATCH, "calls": steps * points}
    assert double["queries"]["test"]["images"] == 3 * len(CLASSES)  # the test set is sent once, by rank 0

    # rank 0 alone wrote: the same files, one attempt, one log with one result block
    assert files_under(two) == files_under(one)
    assert len(json.loads((two / "run.json").read_text())["attempts"]) == 1
    log = (two / "log.txt").read_text()
    first, rest = divmod(points, 2)
    split = f"rank 0 points 1-{first + rest}, rank 1 points {first + rest + 1}-{points} of {points} per step"
    assert f"Perturbations split over 2 processes (gloo): {split}" in log
    assert log.count("* accuracy: ") == 1 and log.count("===== attempt") == 1
    assert f"Target queries: {steps * points * BATCH} images in {steps * points} calls" in log


def test_a_budget_stop_and_its_resume_under_two_processes_match_one_process(toy_root, tmp_path):
    # BLACKVIP: 16 images per step, 8 steps, 12 test images; 100 images stop training after 5 steps.
    opts = ("OPTIM.MAX_EPOCH", 2)
    budget = ("TARGET.BUDGET_IMAGES", 100)
    full, one, two = tmp_path / "full", tmp_path / "one_budget", tmp_path / "two_budget"
    run_side_by_side(
        command(1, train_args("BLACKVIP", toy_root, full, *opts)),
        command(2, train_args("BLACKVIP", toy_root, two, *opts, *budget)),
    )
    stopped = results(two)
    assert stopped["stopped_by"] == "budget" and stopped["steps"] == 5
    assert stopped["queries"]["train"]["images"] == 80 and stopped["queries"]["total"]["images"] == 92
    shutil.copy(two / "coordinator" / "model.pth.tar-1+1", tmp_path / "two_budget_stop.pth.tar")

    # the same budget in one process; and the two-process run resumed with the budget lifted
    run_side_by_side(
        command(1, train_args("BLACKVIP", toy_root, one, *opts, *budget)),
        command(2, train_args("BLACKVIP", toy_root, two, *opts)),
    )
    single = results(one)
    for key in SAME_RESULT:
        assert single[key] == stopped[key], key
    assert_same_state(one / "coordinator" / "model.pth.tar-1+1", tmp_path / "two_budget_stop.pth.tar")
    resumed, uninterrupted = results(two), results(full)
    assert_same_state(full / "coordinator" / "model.pth.tar-2", two / "coordinator" / "model.pth.tar-2")
    assert resumed["accuracy"] == uninterrupted["accuracy"] and resumed["steps"] == uninterrupted["steps"] == 8
    assert resumed["queries"]["train"] == uninterrupted["queries"]["train"]
    log = (two / "log.txt").read_text()
    assert "Training stopped early" in log and "Previous epoch: 1 and 1 steps of epoch 2" in log


SIGTERM_RANK_1_AT_STEP_6 = """
import os
import signal

from trainers.methods.blackbox import BlackBoxTrainer

_original = BlackBoxTrainer.forward_backward
_steps = []


def forward_backward(self, batch):
    _steps.append(1)
    if os.environ.get("RANK") == "1" and len(_steps) == 6:
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, but to one process only
    return _original(self, batch)


BlackBoxTrainer.forward_backward = forward_backward
"""


def test_a_stop_signal_to_one_process_stops_both_with_a_checkpoint_and_the_resume_is_exact(toy_root, tmp_path):
    plugin = tmp_path / "sigterm_rank_1.py"
    plugin.write_text(SIGTERM_RANK_1_AT_STEP_6)
    opts = ("OPTIM.MAX_EPOCH", 2)
    full, two = tmp_path / "full", tmp_path / "two"
    # torchrun reports the workers' exit (143 = 128 + SIGTERM, in the log) as its own status 1
    run_side_by_side(
        command(1, train_args("VPOUR", toy_root, full, *opts)),
        command(2, train_args("VPOUR", toy_root, two, *opts)),
        expect=(0, 1),
        plugins=[str(plugin)],
    )
    log = (two / "log.txt").read_text()
    assert "Stopped on SIGTERM after saving" in log and "model.pth.tar-1+2" in log
    assert sorted(os.listdir(two / "prompter")) == ["checkpoint", "model.pth.tar-1+2"]
    run_side_by_side(command(2, train_args("VPOUR", toy_root, two, *opts)))
    assert_same_state(full / "prompter" / "model.pth.tar-2", two / "prompter" / "model.pth.tar-2")
    assert results(two)["accuracy"] == results(full)["accuracy"]
    assert results(two)["queries"]["train"] == results(full)["queries"]["train"]
    assert "Previous epoch: 1 and 2 steps of epoch 2" in (two / "log.txt").read_text()


# ---------------------------------------------------------------- refusals and the split itself (no processes)


@pytest.mark.parametrize("method", ["VPWB", "ZeroshotCLIP", "LP", "FT"])
def test_trainers_that_cannot_split_their_work_refuse_several_processes(method, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = train.parse_args(["--trainer", method, "--output-dir", str(tmp_path / "out")])
    with pytest.raises(ConfigError, match=f"{method} cannot split its work over 2 processes.*python train.py"):
        train.main(args)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "points,world,ranges",
    [
        (10, 2, [(0, 5), (5, 10)]),
        (3, 2, [(0, 2), (2, 3)]),
        (6, 4, [(0, 2), (2, 4), (4, 5), (5, 6)]),
        (1, 2, [(0, 1), (1, 1)]),
    ],
)
def test_points_are_split_in_order_with_shares_differing_by_at_most_one(points, world, ranges):
    shards = PointShards(points, 0, world)
    assert [(r.start, r.stop) for r in shards.ranges] == ranges


def _fail_on_rank_1(rank, init_file, kind, outcomes):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        counter = QueryCounter()
        shards = PointShards(4, rank, 2)

        def local(points):
            counter.add("train", 8, calls=2)  # queries sent (and billed) before the failure
            if rank == 1:
                raise kind("endpoint down")
            return torch.ones(len(points)), torch.zeros(len(points), dtype=torch.int64)

        try:
            shards.evaluate(local, counter)
        except Exception as e:
            outcomes[rank] = (type(e).__name__, str(e), counter.images("train"), counter.calls("train"))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("kind", [ResumableError, ValueError])
def test_a_failure_in_one_process_stops_every_process_at_the_same_step(kind, tmp_path):
    import torch.multiprocessing as mp

    outcomes = mp.Manager().dict()
    mp.spawn(_fail_on_rank_1, args=(str(tmp_path / "init"), kind, outcomes), nprocs=2, join=True)
    expected = "ResumableError" if kind is ResumableError else "RuntimeError"
    assert outcomes[1][:2] == (kind.__name__, "endpoint down")
    assert (
        outcomes[0][0] == expected and "process 1 of 2 failed" in outcomes[0][1] and "endpoint down" in outcomes[0][1]
    )
    assert outcomes[0][2:] == outcomes[1][2:] == (16, 4)  # both processes count every query sent
