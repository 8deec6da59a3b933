"""``extend_cfg``: every config key the reference BlackVIP code adds to Dassl's defaults, plus this project's own.

Reference keys keep their names and defaults so published hyper-parameter tables and yaml files merge
unchanged. Keys marked "project" are additions; each defaults to the reference behaviour.
"""
from dassl.config import CfgNode as CN


def extend_cfg(cfg: CN, randomize: bool = True) -> CN:
    """Add the plugin keys to ``cfg`` in place (before any yaml or command-line merge) and return it."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new

    cfg.DATASET.LOCMNIST = CN()
    cfg.DATASET.LOCMNIST.R_SIZE = 1
    cfg.DATASET.LOCMNIST.F_SIZE = 4

    cfg.DATASET.COLOUR_BIASED_MNIST = CN()
    cfg.DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO = 0.8
    cfg.DATASET.COLOUR_BIASED_MNIST.TEST_RHO = 0.2
    cfg.DATASET.COLOUR_BIASED_MNIST.TRAIN_N_CONFUSING_LABELS = 9
    cfg.DATASET.COLOUR_BIASED_MNIST.TEST_N_CONFUSING_LABELS = 9
    cfg.DATASET.COLOUR_BIASED_MNIST.USE_TEST_AS_VAL = True
    cfg.DATASET.COLOUR_BIASED_MNIST.RANDOMIZE = bool(randomize)

    cfg.TRAINER.VPWB = CN()
    cfg.TRAINER.VPWB.PREC = "amp"  # amp or fp32
    cfg.TRAINER.VPWB.METHOD = "padding"
    cfg.TRAINER.VPWB.IMAGE_SIZE = 224
    cfg.TRAINER.VPWB.PROMPT_SIZE = 30

    cfg.TRAINER.VPOUR = CN()
    cfg.TRAINER.VPOUR.METHOD = "padding"
    cfg.TRAINER.VPOUR.IMAGE_SIZE = 224
    cfg.TRAINER.VPOUR.PROMPT_SIZE = 30
    cfg.TRAINER.VPOUR.SPSA_PARAMS = [0.0, 0.001, 40.0, 0.6, 0.1]  # o, c, a, alpha, gamma
    cfg.TRAINER.VPOUR.OPT_TYPE = "spsa-gc"  # spsa or spsa-gc
    cfg.TRAINER.VPOUR.MOMS = 0.9
    cfg.TRAINER.VPOUR.SP_AVG = 5
    cfg.TRAINER.VPOUR.ONE_SIDED = False  # project: K+1 queries per step instead of 2K
    cfg.TRAINER.VPOUR.CLIP_NORM = 0.0  # project: clip the gradient estimate to this L2 norm (0 = off)

    cfg.TRAINER.BLACKVIP = CN()
    cfg.TRAINER.BLACKVIP.METHOD = "coordinator"  # coordinator or coordinator_init
    cfg.TRAINER.BLACKVIP.PT_BACKBONE = "vit-mae-base"  # vit-mae-base, vit-base, dino-resnet-50
    cfg.TRAINER.BLACKVIP.PT_BACKBONE_PATH = ""  # project: local weights for the coordinator encoder
    cfg.TRAINER.BLACKVIP.SRC_DIM = 1568  # 784, 1568 or 3136
    cfg.TRAINER.BLACKVIP.E_OUT_DIM = 0
    cfg.TRAINER.BLACKVIP.SPSA_PARAMS = [0.0, 0.001, 40.0, 0.6, 0.1]  # o, c, a, alpha, gamma
    cfg.TRAINER.BLACKVIP.OPT_TYPE = "spsa-gc"  # spsa or spsa-gc
    cfg.TRAINER.BLACKVIP.MOMS = 0.9
    cfg.TRAINER.BLACKVIP.SP_AVG = 5
    cfg.TRAINER.BLACKVIP.P_EPS = 1.0
    cfg.TRAINER.BLACKVIP.PREC = "amp"  # project: amp = fp16 autocast in training on CUDA (reference); fp32
    cfg.TRAINER.BLACKVIP.ONE_SIDED = False  # project
    cfg.TRAINER.BLACKVIP.CLIP_NORM = 0.0  # project

    cfg.TRAINER.BAR = CN()
    cfg.TRAINER.BAR.METHOD = "reprogramming"
    cfg.TRAINER.BAR.LRS = [0.01, 0.0001]  # init_lr, min_lr
    cfg.TRAINER.BAR.FRAME_SIZE = 224
    cfg.TRAINER.BAR.SMOOTH = 0.01
    cfg.TRAINER.BAR.SIMGA = 1.0  # (sic) the reference's key name for the direction scale
    cfg.TRAINER.BAR.SP_AVG = 5
    cfg.TRAINER.BAR.FOCAL_G = 2.0

    cfg.TRAINER.FTCLIP = CN()
    cfg.TRAINER.FTCLIP.METHOD = "ft"

    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16
    cfg.TRAINER.COOP.CSC = False
    cfg.TRAINER.COOP.CTX_INIT = ""
    cfg.TRAINER.COOP.PREC = "fp16"
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"

    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"

    # project: the black box every method queries
    cfg.TARGET = CN()
    cfg.TARGET.NAME = "clip"  # clip or classifier
    cfg.TARGET.CHECKPOINT = ""  # explicit weights file
    cfg.TARGET.DOWNLOAD = False  # fetch weights from the network only when True
    cfg.TARGET.PRECISION = "fp32"  # fp32, fp16 or bf16 (the last two on CUDA only)
    cfg.TARGET.MAX_BATCH = 0  # most images per call (0 = no limit)
    cfg.TARGET.USD_PER_1K = 0.0  # cost rate reported beside the query counts
    cfg.TARGET.CLASSIFIER = CN()
    cfg.TARGET.CLASSIFIER.ARCH = "efficientnet-lite0"
    cfg.TARGET.CLASSIFIER.LABEL_MAP = "semantic"  # semantic or index
    cfg.TARGET.CLASSIFIER.INDICES = []  # index map: ImageNet class per downstream class (empty = 0..C-1)
    cfg.TARGET.CLASSIFIER.TEMPERATURE = 0.05  # semantic map: sharpness of the class-name similarity
    return cfg
