"""Constraints on edits: which words may be substituted, and the checks an edit must pass.

Lexical rules (always on; they define what a synonym substitution is):

- stopwords (``lexicon.STOPWORDS``) are never substituted;
- proper nouns and names are never substituted: a word tagged NNP/NNPS in its sentence, or one
  of the names the ``entities`` perturbation swaps (that perturbation changes names on purpose);
- a substitute keeps the part of speech the word has *in its sentence*: synonyms come from
  WordNet synsets of that POS, and the substitute, put in place, must be tagged with it again
  (TextAttack's ``PartOfSpeech`` constraint does the same re-tagging).

Semantic checks (``Constraints``; the evaluator's ``constraints`` option turns them off):

- sentence: the cosine similarity of the sentence embeddings of a window of ``window`` words
  centred on the edit, before and after it, is at least ``sentence`` (TextFooler: Universal
  Sentence Encoder, 0.84 over 15 words; ours: the embedded MiniLM, thresholds measured on
  bbc-news, see README "Robustness constraints");
- word (the attack's synonym swaps): the similarity of the substitute's embedding to the
  original word's is at least ``word``;
- a cap on the share of words one attack may change (``max_words_changed``).

The tagger is TextBlob's ``PatternTagger`` data (Brill-style lexicon, morphology and context
rules from Pattern, shipped inside the ``textblob`` wheel): NLTK's perceptron tagger is a
download these machines cannot make. The encoder is the embedded all-MiniLM-L6-v2 (the
``minilm`` alias) with mean pooling over the attention mask and L2 normalisation, exactly as
sentence-transformers' ``modules.json`` for that model says; the dozen lines are hand-written
on transformers so no second model stack is needed, and so the encoder batches and caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import words as w
from .lexicon import ENTITY_KIND, STOPWORDS

PENN_TO_WORDNET = {"NN": "n", "NNS": "n", "VB": "v", "VBP": "v", "JJ": "a", "RB": "r"}
NAME_TAGS = frozenset({"NNP", "NNPS"})
POS_CONTEXT = 5        # words each side of an edit that the POS re-check re-tags


def tag_tokens(tokens: list[str]) -> list[str]:
    """Penn Treebank tags of already-split tokens (TextBlob's Pattern tagger, no download)."""
    from textblob.en import parser

    return [tag for _, tag in parser.find_tags(list(tokens))] if tokens else []


def _tokens(parts: Sequence[str], slots: Sequence[int]) -> tuple[list[str], dict[int, int]]:
    """The tagger's tokens for ``slots`` (punctuation split off, as the tagger expects) and
    the index of each slot's core among them."""
    tokens, where = [], {}
    for i in slots:
        prefix, core, suffix = w.pieces(parts[i])
        tokens += list(prefix)
        if core:
            where[i] = len(tokens)
            tokens.append(core)
        tokens += [suffix] if suffix else []
    return tokens, where


def slot_tags(parts: Sequence[str]) -> dict[int, str]:
    """The Penn tag of every word slot's core, tagged in its sentence."""
    tokens, where = _tokens(parts, w.word_slots(parts))
    tags = tag_tokens(tokens)
    return {i: tags[k] for i, k in where.items()}


def substitutable_pos(core: str, tag: str | None) -> str | None:
    """The WordNet POS a synonym of ``core`` must have, or None when it may not be substituted
    (a stopword, a name, a proper noun, a POS WordNet has no synonyms for, an inflection)."""
    if not core.isalpha() or core.lower() in STOPWORDS or core in ENTITY_KIND or tag in NAME_TAGS:
        return None
    return PENN_TO_WORDNET.get(tag or "")


def pos_kept(parts: Sequence[str], slot: int, new_core: str, pos: str) -> bool:
    """Whether ``new_core`` put at ``slot`` is tagged with the WordNet POS ``pos`` in context."""
    slots = w.word_slots(parts)
    k = slots.index(slot)
    window = list(parts)
    window[slot] = w.replace_core(parts[slot], new_core)
    tokens, where = _tokens(window, slots[max(0, k - POS_CONTEXT):k + POS_CONTEXT + 1])
    return PENN_TO_WORDNET.get(tag_tokens(tokens)[where[slot]]) == pos


def window_text(parts: Sequence[str], start: int, stop: int, size: int) -> str:
    """The text of ``parts[start:stop]`` with up to ``size // 2`` words either side."""
    half = 2 * (size // 2)   # parts alternate token, whitespace
    return "".join(parts[max(0, start - half):stop + half]).strip()


_LOADED: dict[str, tuple[Any, Any]] = {}


class SentenceEncoder:
    """The embedded MiniLM as a sentence encoder (mean pooling, unit length), batched, cached."""

    def __init__(self, model: str = "minilm", batch_size: int = 256, max_length: int = 64) -> None:
        self.model_name, self.batch_size, self.max_length = model, batch_size, max_length
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}

    def _load(self) -> None:
        if self.model_name not in _LOADED:   # once per process: every evaluation reuses the weights
            from transformers import AutoModel, AutoTokenizer

            from hub.models import resolve_model

            source = resolve_model(self.model_name)
            _LOADED[self.model_name] = (AutoTokenizer.from_pretrained(source),
                                        AutoModel.from_pretrained(source, use_safetensors=True).eval())
        self._tokenizer, self._model = _LOADED[self.model_name]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text; each distinct text is encoded once."""
        import torch

        # distinct texts, longest first, in large batches: windows are short, so padding and
        # per-batch overhead dominate on CPU (256 ran 1.4x faster than 64 on 2 cores)
        todo = sorted(dict.fromkeys(t for t in texts if t not in self._cache), key=len, reverse=True)
        if todo and self._model is None:
            self._load()
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            enc = self._tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                  return_tensors="pt")
            with torch.inference_mode():
                hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            self._cache.update(zip(batch, pooled))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0))

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Cosine similarity of each (a, b) pair, all encoded in one batched pass."""
        if not pairs:
            return np.zeros(0)
        emb = self.encode([a for a, _ in pairs] + [b for _, b in pairs])
        return np.einsum("ij,ij->i", emb[:len(pairs)], emb[len(pairs):])


@dataclass
class Constraints:
    """The semantic checks an edit must pass, and their running tally."""

    sentence: float = 0.8
    window: int = 15
    word: float = 0.5
    max_words_changed: float = 0.2
    encoder: Any = field(default_factory=SentenceEncoder)
    checked: int = 0          # candidate edits checked
    rejected: int = 0         # of which failed
    accepted_similarity: list = field(default_factory=list)

    def sentence_scores(self, edits: Sequence[tuple[Sequence[str], Sequence[str], int, int, int, int]]) -> np.ndarray:
        """Window similarity of each edit ``(before_parts, after_parts, i1, i2, j1, j2)``: the
        edit replaced ``before_parts[i1:i2]`` with ``after_parts[j1:j2]``."""
        return self.encoder.similarity([(window_text(a, i1, i2, self.window), window_text(b, j1, j2, self.window))
                                        for a, b, i1, i2, j1, j2 in edits])

    def passes(self, sentence: np.ndarray, word: np.ndarray | None = None) -> np.ndarray:
        """Which edits pass; counts them into the tally."""
        ok = sentence >= self.sentence
        if word is not None:
            ok &= word >= self.word
        self.checked += len(ok)
        self.rejected += int((~ok).sum())
        return ok

    def max_changes(self, n_words: int) -> int:
        return max(1, int(self.max_words_changed * n_words))

    def report(self) -> dict[str, float]:
        """Share of candidate edits rejected and mean similarity of the accepted ones."""
        out = {"rejected": self.rejected / self.checked} if self.checked else {}
        if self.accepted_similarity:
            out["similarity"] = float(np.mean(self.accepted_similarity))
        return out


def _edits(before: list[str], after: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes between two part lists (token and whitespace runs)."""
    import difflib

    return difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes()


def constrain_texts(originals: Sequence[str], perturbed: Sequence[str], constraints: Constraints) -> list[str]:
    """``perturbed`` with every edit that fails the sentence check reverted.

    Edits are found by aligning the two texts' parts (difflib); each edit is checked on its
    own window of the original text with only that edit made (so one bad edit does not sink its
    neighbours), all edits of all texts in one batched encoder pass, and the accepted ones'
    similarities go into the tally.
    """
    texts = [(w.split(a), w.split(b)) for a, b in zip(originals, perturbed)]
    ops = [[op for op in _edits(a, b) if op[0] != "equal"] for a, b in texts]
    scores = constraints.sentence_scores([(a, a[:i1] + b[j1:j2] + a[i2:], i1, i2, i1, i1 + j2 - j1)
                                          for (a, b), edits in zip(texts, ops) for _, i1, i2, j1, j2 in edits])
    ok = constraints.passes(scores)
    constraints.accepted_similarity += [float(s) for s in scores[ok]]
    out, k = [], 0
    for (a, b), edits in zip(texts, ops):
        keep = dict(zip(map(tuple, edits), ok[k:k + len(edits)]))
        k += len(edits)
        pieces = [b[j1:j2] if tag == "equal" or keep[(tag, i1, i2, j1, j2)] else a[i1:i2]
                  for tag, i1, i2, j1, j2 in _edits(a, b)]
        out.append("".join(p for piece in pieces for p in piece))
    return out
