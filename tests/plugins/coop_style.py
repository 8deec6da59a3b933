"""A dataset and a trainer written exactly the way CoOp-family code writes them, to prove drop-in compatibility."""

import os
import os.path as osp
import pickle

import torch.nn as nn
import torch.nn.functional as F

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import mkdir_if_missing, read_json


@DATASET_REGISTRY.register()
class ToyCoOp(DatasetBase):
    dataset_dir = "toy_coop"

    def __init__(self, cfg):
        root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = osp.join(root, self.dataset_dir)
        self.image_dir = osp.join(self.dataset_dir, "images")
        self.split_path = osp.join(self.dataset_dir, "split_zhou_ToyCoOp.json")
        self.split_fewshot_dir = osp.join(self.dataset_dir, "split_fewshot")
        mkdir_if_missing(self.split_fewshot_dir)

        train, val, test = self.read_split(self.split_path, self.image_dir)
        num_shots = cfg.DATASET.NUM_SHOTS
        if num_shots >= 1:
            preprocessed = osp.join(self.split_fewshot_dir, f"shot_{num_shots}-seed_{cfg.SEED}.pkl")
            if osp.exists(preprocessed):
                print(f"Loading preprocessed few-shot data from {preprocessed}")
                with open(preprocessed, "rb") as file:
                    data = pickle.load(file)
                    train, val = data["train"], data["val"]
            else:
                train = self.generate_fewshot_dataset(train, num_shots=num_shots)
                val = self.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
                print(f"Saving preprocessed few-shot data to {preprocessed}")
                with open(preprocessed, "wb") as file:
                    pickle.dump({"train": train, "val": val}, file, protocol=pickle.HIGHEST_PROTOCOL)
        super().__init__(train_x=train, val=val, test=test)

    @staticmethod
    def read_split(filepath, path_prefix):
        def _convert(items):
            return [Datum(impath=os.path.join(path_prefix, p), label=int(y), classname=c) for p, y, c in items]

        print(f"Reading split from {filepath}")
        split = read_json(filepath)
        return _convert(split["train"]), _convert(split["val"]), _convert(split["test"])


class TinyNet(nn.Module):
    def __init__(self, num_classes, size):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * size * size, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).flatten(1))


@TRAINER_REGISTRY.register()
class ToyTrainer(TrainerX):
    def build_model(self):
        cfg = self.cfg
        self.model = TinyNet(self.num_classes, cfg.INPUT.SIZE[0]).to(self.device)
        self.optim = build_optimizer(self.model, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("model", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)
