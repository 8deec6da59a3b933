"""Runs that cannot lie: a run folder's identity and lock, one log per run, clean stops and exact resumes from
any checkpoint, refused values, corrupt files named, and results that a group can read."""

import hashlib
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

import train
from dassl.utils import CheckpointError, load_checkpoint, write_json
from tests.helpers.toy_data import make_coop_dataset
from tests.plugins import coop_style
from trainers.run_folder import RunFolder, RunFolderError

CLASSES = ["apple", "banana", "cherry", "date"]
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_coop_dataset(str(root), "toy_coop", "split_zhou_ToyCoOp.json", CLASSES)
    return root


@pytest.fixture
def yamls(tmp_path):
    dataset = tmp_path / "toy_coop.yaml"
    dataset.write_text("DATASET:\n  NAME: ToyCoOp\n")
    trainer = tmp_path / "toy.yaml"
    trainer.write_text(
        "DATALOADER:\n  TRAIN_X:\n    BATCH_SIZE: 4\n  TEST:\n    BATCH_SIZE: 8\n  NUM_WORKERS: 0\n"
        "INPUT:\n  SIZE: (16, 16)\n  TRANSFORMS: ['random_flip', 'normalize']\n"
        "OPTIM:\n  NAME: sgd\n  LR: 0.05\n  MAX_EPOCH: 3\n  LR_SCHEDULER: cosine\n"
        "TRAIN:\n  PRINT_FREQ: 1\n"
    )
    return dataset, trainer


def argv(root, out, yamls, *opts, seed=1, extra=()):
    return [
        "--root",
        str(root),
        "--seed",
        str(seed),
        "--trainer",
        "ToyTrainer",
        "--dataset-config-file",
        str(yamls[0]),
        "--config-file",
        str(yamls[1]),
        "--output-dir",
        str(out),
        *extra,
        *[str(o) for o in opts],
    ]


def run(root, out, yamls, *opts, seed=1, extra=()):
    return train.main(train.parse_args(argv(root, out, yamls, *opts, seed=seed, extra=extra)))


def snapshot(folder):
    """Every file under ``folder`` (but the lock) with its content digest and modification time."""
    files = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            if name == ".lock":
                continue
            path = osp.join(dirpath, name)
            with open(path, "rb") as f:
                files[osp.relpath(path, folder)] = (hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return files


def weights(path):
    return load_checkpoint(str(path))["state_dict"]


def assert_same_weights(a, b):
    a, b = weights(a), weights(b)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------- identity of a run folder


@pytest.mark.parametrize(
    "opts,extra,named",
    [
        ((), {"seed": 2}, "SEED: 1 -> 2"),
        (("OPTIM.MAX_EPOCH", 4), {}, "OPTIM.MAX_EPOCH: 3 -> 4"),
        (("DATALOADER.TRAIN_X.BATCH_SIZE", 8), {}, "DATALOADER.TRAIN_X.BATCH_SIZE: 4 -> 8"),
        (("OPTIM.LR", 0.1), {}, "OPTIM.LR: 0.05 -> 0.1"),
    ],
)
def test_a_different_run_into_a_used_folder_stops_and_touches_nothing(toy_root, tmp_path, yamls, opts, extra, named):
    out = tmp_path / "out"
    run(toy_root, out, yamls)
    before = snapshot(out)
    with pytest.raises(RunFolderError) as err:
        run(toy_root, out, yamls, *opts, **extra)
    message = str(err.value)
    assert named in message and "Nothing was changed" in message and "--start-over" in message
    assert "--output-dir" in message
    assert snapshot(out) == before


def test_an_attempt_that_left_no_checkpoint_does_not_block_a_corrected_command(toy_root, tmp_path, yamls, monkeypatch):
    out = tmp_path / "out"

    def die(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(coop_style.ToyTrainer, "run_epoch", die)
    with pytest.raises(KeyboardInterrupt):
        run(toy_root, out, yamls)
    monkeypatch.undo()
    results = run(toy_root, out, yamls, seed=2)
    assert results["seed"] == 2
    [moved] = [d for d in os.listdir(out) if d.startswith(".replaced-")]
    assert RunFolder(str(out / moved)).record()["fingerprint"]["SEED"] == 1
    log = (out / "log.txt").read_text()
    assert "Setting fixed seed: 2" in log and "Setting fixed seed: 1" not in log
    assert "had another configuration and stopped before their first checkpoint" in log
    assert RunFolder(str(out)).record()["fingerprint"]["SEED"] == 2


def test_start_over_moves_the_other_run_aside(toy_root, tmp_path, yamls):
    out = tmp_path / "out"
    first = run(toy_root, out, yamls)
    second = run(toy_root, out, yamls, seed=2, extra=["--start-over"])
    assert second["seed"] == 2
    moved = [d for d in os.listdir(out) if d.startswith(".replaced-")]
    assert len(moved) == 1
    old = RunFolder(str(out / moved[0]))
    assert old.record()["fingerprint"]["SEED"] == 1
    assert load_checkpoint(str(out / moved[0] / "model" / "model.pth.tar-3"))["epoch"] == 3
    assert first["seed"] == 1 and RunFolder(str(out)).record()["fingerprint"]["SEED"] == 2


def test_keys_that_cannot_change_the_result_may_change_on_resume(toy_root, tmp_path, yamls):
    out = tmp_path / "out"
    first = run(toy_root, out, yamls)
    again = run(toy_root, out, yamls, "TRAIN.PRINT_FREQ", 5, "TRAIN.CHECKPOINT_FREQ", 2)
    assert again["accuracy"] == first["accuracy"]
    assert len(RunFolder(str(out)).record()["attempts"]) == 2


def test_a_folder_written_before_run_records_is_checked_against_its_results(toy_root, tmp_path, yamls):
    out = tmp_path / "out"
    run(toy_root, out, yamls)
    os.remove(out / "run.json")
    with pytest.raises(RunFolderError, match="SEED: 1 -> 2"):
        run(toy_root, out, yamls, seed=2)
    os.remove(out / "results.json")  # only checkpoints remain: their fingerprint digest still tells them apart
    with pytest.raises(RunFolderError, match="holds checkpoints of another run"):
        run(toy_root, out, yamls, seed=2)


def test_a_live_run_holds_its_folder(toy_root, tmp_path, yamls):
    out = tmp_path / "out"
    with RunFolder(str(out)).locked():
        with pytest.raises(RunFolderError, match="in use by a live run .*pid"):
            run(toy_root, out, yamls)
    assert not (out / "run.json").exists() and not (out / "log.txt").exists()
    run(toy_root, out, yamls)  # released when the holder ends


def test_eval_only_in_a_training_folder_writes_its_own_file(toy_root, tmp_path, yamls):
    out = tmp_path / "out"
    trained = run(toy_root, out, yamls)
    record = (out / "results.json").read_bytes()
    evaluated = run(toy_root, out, yamls, extra=["--eval-only"])
    assert (out / "results.json").read_bytes() == record
    assert (out / "results-eval.json").exists() and evaluated["eval_only"] is True
    assert evaluated["accuracy"] == trained["accuracy"]
    assert len(RunFolder(str(out)).record()["attempts"]) == 1


# ---------------------------------------------------------------- logs, wall time, stops and resumes


def test_log_lines_reach_the_file_before_the_process_ends(tmp_path):
    from dassl.utils import close_logger, setup_logger

    setup_logger(str(tmp_path))
    print("epoch [1/3] loss 1.0")
    assert "epoch [1/3] loss 1.0" in (tmp_path / "log.txt").read_text()
    close_logger()


def test_a_run_killed_before_its_first_checkpoint_keeps_one_log(toy_root, tmp_path, yamls, monkeypatch):
    out = tmp_path / "out"
    original = coop_style.ToyTrainer.run_epoch

    def die(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(coop_style.ToyTrainer, "run_epoch", die)
    with pytest.raises(KeyboardInterrupt):
        run(toy_root, out, yamls)
    monkeypatch.setattr(coop_style.ToyTrainer, "run_epoch", original)
    run(toy_root, out, yamls)
    assert [f for f in os.listdir(out) if f.startswith("log")] == ["log.txt"]
    log = (out / "log.txt").read_text()
    assert "===== attempt 1: started" in log and "===== attempt 2: resumed" in log
    assert log.index("attempt 2") < log.index("epoch [3/3]") < log.index("Finish training")


def sigterm_at(step):
    """A forward_backward that sends this process SIGTERM during its ``step``-th call (as SLURM or timeout would)."""
    original = coop_style.ToyTrainer.forward_backward
    calls = []

    def forward_backward(self, batch):
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch)

    return forward_backward


def test_sigterm_checkpoints_mid_epoch_and_the_resume_is_exact(toy_root, tmp_path, yamls, monkeypatch):
    full = tmp_path / "full"
    full_results = run(toy_root, full, yamls)

    part = tmp_path / "part"
    monkeypatch.setattr(coop_style.ToyTrainer, "forward_backward", sigterm_at(8))  # epoch 2, step 2 of 6
    with pytest.raises(SystemExit) as stop:
        run(toy_root, part, yamls)
    assert stop.value.code == 128 + signal.SIGTERM
    monkeypatch.undo()
    assert sorted(os.listdir(part / "model")) == ["checkpoint", "model.pth.tar-1+2"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers are given back
    resumed = run(toy_root, part, yamls)

    assert_same_weights(full / "model" / "model.pth.tar-3", part / "model" / "model.pth.tar-3")
    assert resumed["accuracy"] == full_results["accuracy"]
    log = (part / "log.txt").read_text()
    assert "Received SIGTERM: checkpointing after this step, then stopping" in log
    assert "Previous epoch: 1 and 2 steps of epoch 2" in log
    first_wall = load_checkpoint(str(part / "model" / "model.pth.tar-1+2"))["trainer_state"]["wall_seconds"]
    assert resumed["wall_time_s"] >= first_wall > 0


def test_time_based_checkpoints_roll_and_resume_exactly(toy_root, tmp_path, yamls, monkeypatch):
    opts = ("TRAIN.CHECKPOINT_MINUTES", 1e-9)  # due after every step
    full = tmp_path / "full"
    run(toy_root, full, yamls, *opts)
    rolling = sorted(f for f in os.listdir(full / "model") if "+" in f)
    assert rolling == ["model.pth.tar-2+5", "model.pth.tar-2+6"]  # the newest two; older ones pruned

    part = tmp_path / "part"
    original = coop_style.ToyTrainer.forward_backward
    calls = []

    def crash_at_step_9(self, batch):
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt  # a kill between checkpoints
        return original(self, batch)

    monkeypatch.setattr(coop_style.ToyTrainer, "forward_backward", crash_at_step_9)
    with pytest.raises(KeyboardInterrupt):
        run(toy_root, part, yamls, *opts)
    monkeypatch.undo()
    assert (part / "model" / "checkpoint").read_text().strip() == "model.pth.tar-1+2"
    run(toy_root, part, yamls, *opts)
    assert_same_weights(full / "model" / "model.pth.tar-3", part / "model" / "model.pth.tar-3")


def killed_after_epoch_2(monkeypatch, root, out, yamls, *opts):
    """Run until the end of epoch 2 (its checkpoint written), then die as a kill would."""
    original = coop_style.ToyTrainer.after_epoch

    def die_after_epoch_2(self):
        original(self)
        if self.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(coop_style.ToyTrainer, "after_epoch", die_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run(root, out, yamls, *opts)
    monkeypatch.undo()


def test_best_val_state_survives_a_resume(toy_root, tmp_path, yamls, monkeypatch):
    opts = ("TEST.FINAL_MODEL", "best_val", "TRAIN.CHECKPOINT_FREQ", 1)
    full = run(toy_root, tmp_path / "full", yamls, *opts)
    killed_after_epoch_2(monkeypatch, toy_root, tmp_path / "part", yamls, *opts)
    saved = load_checkpoint(str(tmp_path / "part" / "model" / "model.pth.tar-2"))["trainer_state"]["best_result"]
    assert saved is not None
    resumed = run(toy_root, tmp_path / "part", yamls, *opts)
    assert resumed["accuracy"] == full["accuracy"]
    best_full = load_checkpoint(str(tmp_path / "full" / "model" / "model-best.pth.tar"))
    best_part = load_checkpoint(str(tmp_path / "part" / "model" / "model-best.pth.tar"))
    assert best_full["epoch"] == best_part["epoch"] and best_full["val_result"] == best_part["val_result"]


def test_checkpoints_are_time_based_by_default():
    cfg = train.setup_cfg(train.parse_args(["--trainer", "ToyTrainer"]))
    assert cfg.TRAIN.CHECKPOINT_MINUTES == 10


def subprocess_env():
    return {**os.environ, "PYTHONPATH": REPO, "BBVP_PLUGINS": osp.join(REPO, "tests", "plugins", "coop_style.py")}


def start_long_run(toy_root, out, yamls):
    cmd = [sys.executable, osp.join(REPO, "train.py"), *argv(toy_root, out, yamls, "OPTIM.MAX_EPOCH", 500)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / "log.txt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and "epoch [2/500]" in log.read_text():
            return proc
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the run did not reach epoch 2: {proc.stderr.read().decode()[-2000:]}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_an_external_stop_signal_ends_the_process_with_a_checkpoint(toy_root, tmp_path, yamls, sig):
    out = tmp_path / "out"
    proc = start_long_run(toy_root, out, yamls)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 128 + sig
    log = (out / "log.txt").read_text()
    assert f"Received {signal.Signals(sig).name}" in log and "run the same command to resume" in log
    pointer = (out / "model" / "checkpoint").read_text().strip()
    assert load_checkpoint(str(out / "model" / pointer))["epoch"] >= 1


def test_sigkill_keeps_the_log_up_to_the_kill(toy_root, tmp_path, yamls):
    out = tmp_path / "out"
    proc = start_long_run(toy_root, out, yamls)
    proc.kill()
    proc.wait(timeout=30)
    log = (out / "log.txt").read_text()
    assert "===== attempt 1: started" in log and "epoch [2/500]" in log
    assert RunFolder(str(out)).locked  # the kernel released the lock: a new run may start
    with RunFolder(str(out)).locked():
        pass


# ---------------------------------------------------------------- values that cannot be meant


@pytest.mark.parametrize(
    "opts,words",
    [
        (("OPTIM.MAX_EPOCH", 0), "OPTIM.MAX_EPOCH must be >= 1, got 0"),
        (("DATASET.NUM_SHOTS", 0), "DATASET.NUM_SHOTS must be -1 or >= 1, got 0"),
        (("DATALOADER.TRAIN_X.BATCH_SIZE", 0), "DATALOADER.TRAIN_X.BATCH_SIZE must be >= 1"),
        (("TRAIN.CHECKPOINT_MINUTES", -1), "TRAIN.CHECKPOINT_MINUTES must be >= 0"),
        (("TRAINER.BLACKVIP.P_EPS", 0.0), "TRAINER.BLACKVIP.P_EPS must be > 0, got 0.0"),
        (("TRAINER.VPOUR.SP_AVG", 0), "TRAINER.VPOUR.SP_AVG must be >= 1"),
        (("TRAINER.VPOUR.MOMS", 1.0), "TRAINER.VPOUR.MOMS must be >= 0 and < 1"),
        (("TRAINER.BAR.SMOOTH", 0.0), "TRAINER.BAR.SMOOTH must be > 0"),
        (("TRAINER.VPOUR.PROMPT_SIZE", 0), "TRAINER.VPOUR.PROMPT_SIZE must be >= 1"),
        (("TARGET.MAX_BATCH", -5), "TARGET.MAX_BATCH must be >= 0"),
        (("SEED", -3), "SEED must be -1 or >= 0"),
    ],
)
def test_values_that_cannot_be_meant_are_refused(opts, words):
    args = train.parse_args(["--trainer", "VPOUR", *[str(o) for o in opts]])
    with pytest.raises(ValueError) as err:
        train.setup_cfg(args)
    assert words in str(err.value)


def test_spsa_gains_that_learn_nothing_are_refused():
    from trainers.zo import SPSAGains

    with pytest.raises(ValueError, match="perturbation scale c and the gain a must be > 0"):
        SPSAGains.from_list([0.0, 0.0, 40.0, 0.6, 0.1])


def test_non_finite_logits_at_evaluation_are_an_error(toy_root, tmp_path, yamls, monkeypatch):
    def nan_inference(self, images):
        out = self.model(images)
        out[0, 0] = float("nan")
        return out

    monkeypatch.setattr(coop_style.ToyTrainer, "model_inference", nan_inference)
    with pytest.raises(FloatingPointError, match="Non-finite logits on the test set .*1 of 8 images"):
        run(toy_root, tmp_path / "out", yamls, "OPTIM.MAX_EPOCH", 1)
    assert not (tmp_path / "out" / "results.json").exists()


# ---------------------------------------------------------------- corrupt files, permissions


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(toy_root, tmp_path, yamls, monkeypatch, capsys):
    opts = ("TRAIN.CHECKPOINT_FREQ", 1)
    full = tmp_path / "full"
    run(toy_root, full, yamls, *opts)
    part = tmp_path / "part"
    killed_after_epoch_2(monkeypatch, toy_root, part, yamls, *opts)
    latest = part / "model" / "model.pth.tar-2"
    latest.write_bytes(latest.read_bytes()[:100])  # truncated, as a full disk leaves a file copied by hand
    run(toy_root, part, yamls, *opts)
    log = (part / "log.txt").read_text()
    assert f"cannot resume from {latest}" in log and "resuming from the previous intact checkpoint" in log
    assert "Previous epoch: 1" in log
    assert_same_weights(full / "model" / "model.pth.tar-3", part / "model" / "model.pth.tar-3")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_unreadable_checkpoints_name_the_file(tmp_path, content):
    path = tmp_path / "model.pth.tar-1"
    if content is None:  # a checkpoint holding a pickled object, which only full unpickling would load
        torch.save({"state_dict": {}, "epoch": 1, "thing": CheckpointError("x")}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(path))
    assert str(path) in str(err.value)
    expected = "full unpickling" if content is None else "truncated, empty or corrupt"
    assert expected in str(err.value)


def test_no_intact_checkpoint_is_a_clear_error(toy_root, tmp_path, yamls):
    out = tmp_path / "out"
    run(toy_root, out, yamls, "OPTIM.MAX_EPOCH", 3)
    (out / "model" / "model.pth.tar-3").write_bytes(b"")
    with pytest.raises(CheckpointError, match="No intact checkpoint to resume from"):
        run(toy_root, out, yamls, "OPTIM.MAX_EPOCH", 3)


def test_results_are_readable_by_the_group_and_killed_writes_are_cleaned(tmp_path):
    old = os.umask(0o022)
    try:
        stale = tmp_path / ".results.json.999999999.abc.tmp"  # a writer with this pid no longer exists
        stale.write_text("{")
        write_json({"accuracy": 1.0}, str(tmp_path / "results.json"))
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "results.json").st_mode & 0o777 == 0o644
    assert sorted(os.listdir(tmp_path)) == ["results.json"]


def test_a_damaged_checkpoint_pointer_falls_back_to_the_newest_file(toy_root, tmp_path, yamls):
    out = tmp_path / "out"
    run(toy_root, out, yamls, "TRAIN.CHECKPOINT_FREQ", 1)
    (out / "model" / "checkpoint").write_text("\x00\x00garbage/../\n")
    again = run(toy_root, out, yamls, "TRAIN.CHECKPOINT_FREQ", 1)
    assert "Previous epoch: 3" in (out / "log.txt").read_text().split("attempt 2")[-1]
    assert again["accuracy"] is not None


def test_the_launcher_refuses_to_skip_a_finished_run_of_another_command(tmp_path):
    from scripts.launch import finished_by_another_command

    args = [
        "--root",
        str(tmp_path),
        "--seed",
        "1",
        "--trainer",
        "VPOUR",
        "--dataset-config-file",
        "configs/datasets/eurosat.yaml",
        "--config-file",
        "configs/trainers/VPOUR/vit_b16.yaml",
        "--output-dir",
        str(tmp_path / "seed1"),
    ]
    from train import parse_args, setup_cfg
    from trainers.run_folder import digest, fingerprint

    own = digest(fingerprint(setup_cfg(parse_args(args))))
    folder = tmp_path / "seed1"
    write_json({"trainer": "VPOUR", "fingerprint": own}, str(folder / "results.json"))
    assert finished_by_another_command(str(folder), args) == ""
    assert "this command's" in finished_by_another_command(str(folder), [*args, "TRAINER.VPOUR.SP_AVG", "3"])
    write_json({"trainer": "VPOUR"}, str(folder / "results.json"))  # written before fingerprints: trusted as before
    assert finished_by_another_command(str(folder), [*args, "TRAINER.VPOUR.SP_AVG", "3"]) == ""


def test_list_keys_shows_ranges_and_which_keys_cannot_change_a_result(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--list-keys", "TRAIN."])
    listing = capsys.readouterr().out
    assert "TRAIN.CHECKPOINT_MINUTES = 10.0  >= 0  [cannot change the result: may differ on resume]" in listing
    with pytest.raises(SystemExit):
        train.parse_args(["--list-keys", "OPTIM.MAX_EPOCH"])
    listing = capsys.readouterr().out
    assert "OPTIM.MAX_EPOCH = 10  >= 1\n" in listing


def test_the_command_line_reports_a_refused_value_without_a_traceback():
    proc = subprocess.run(
        [sys.executable, "train.py", "--trainer", "VPOUR", "OPTIM.MAX_EPOCH", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: OPTIM.MAX_EPOCH must be >= 1, got 0 (training epochs). "
        "Set it in the config file or on the command line, e.g. OPTIM.MAX_EPOCH 10."
    )
