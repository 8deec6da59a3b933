"""OpenAI's byte-level BPE tokenizer (CLIP's 49,408-token vocabulary), on open_clip's implementation.

open_clip ships the same vocabulary file and the same merges; it only spells the two special tokens
differently (``<start_of_text>``). ``SimpleTokenizer`` uses OpenAI's spelling (``<|startoftext|>``,
``<|endoftext|>``) so that ``encoder``, ``decoder``, ``encode`` and ``decode`` give OpenAI's ids and text.
"""

from __future__ import annotations

import regex as re
from open_clip import tokenizer as _open_clip_tokenizer
from open_clip.tokenizer import basic_clean, bytes_to_unicode, default_bpe, get_pairs, whitespace_clean

__all__ = ["SimpleTokenizer", "basic_clean", "bytes_to_unicode", "default_bpe", "get_pairs", "whitespace_clean"]

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
_OPEN_CLIP_SPECIALS = ("<start_of_text>", "<end_of_text>")


class SimpleTokenizer(_open_clip_tokenizer.SimpleTokenizer):
    """``encode(text) -> ids`` and ``decode(ids) -> text`` with OpenAI's vocabulary and special-token names."""

    def __init__(self, bpe_path: str = default_bpe()):
        super().__init__(bpe_path)
        for theirs, ours in zip(_OPEN_CLIP_SPECIALS, (SOT, EOT)):
            self.encoder[ours] = self.encoder.pop(theirs)
        self.decoder = {i: token for token, i in self.encoder.items()}
        self.cache = {SOT: SOT, EOT: EOT}
        words = self.pat.pattern.removeprefix("|".join(_OPEN_CLIP_SPECIALS))
        if words == self.pat.pattern:
            raise RuntimeError("open_clip's tokenizer pattern changed; clip.simple_tokenizer needs updating")
        self.pat = re.compile("|".join(re.escape(t) for t in (SOT, EOT)) + words, re.IGNORECASE)
