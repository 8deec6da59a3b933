from .build import TRAINER_REGISTRY, build_trainer
from .trainer import ResumableError, SimpleTrainer, StopTraining, TrainerBase, TrainerX, TrainingStopped
