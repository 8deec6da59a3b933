from .build import TRAINER_REGISTRY, build_trainer
from .trainer import SimpleTrainer, StopTraining, TrainerBase, TrainerX, TrainingStopped
