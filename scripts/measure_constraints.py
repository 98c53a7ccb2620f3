"""Measure the robustness constraints' similarities on the embedded bbc-news data.

Prints, for the `synonyms` perturbation's edits and for every in-context synonym the attack
could try, the distribution of the window similarity (sentence check) and of the word
similarity (the attack's word check), with the share each threshold would reject and a few
edits on either side of it, so the defaults in RobustnessOptions can be read off data:

    .venv/bin/python scripts/measure_constraints.py --texts 100
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from evaluators.robustness import words as w
from evaluators.robustness.constraints import Constraints, constrain_texts, slot_tags, substitutable_pos
from evaluators.robustness.perturb import perturb, synonym_candidates
from evaluators.robustness.wordnet import get_wordnet
from hub.embedded_data import read_embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100, help="bbc-news texts to sample")
    parser.add_argument("--words", type=int, default=120, help="words of each text kept (what a model reads)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    df = read_embedded("bbc-news")
    rows = random.Random(args.seed).sample(range(len(df)), args.texts)
    texts = [" ".join(df.text.iloc[i].split()[:args.words]) for i in rows]
    wordnet = get_wordnet()

    # sentence check: every synonyms edit at severity 0.15, each window scored (threshold 0 keeps all)
    probe = Constraints(sentence=0.0)
    edited = [perturb("synonyms", t, 0.15, seed=args.seed, key=k) for k, t in enumerate(texts)]
    constrain_texts(texts, edited, probe)
    sims = np.array(probe.accepted_similarity)
    print(f"synonyms edits: {len(sims)}; window similarity quantiles (5/25/50/75/95%): "
          f"{np.round(np.quantile(sims, [.05, .25, .5, .75, .95]), 3).tolist()}")
    for t in (0.8, 0.84, 0.85, 0.88, 0.9, 0.92):
        print(f"  sentence threshold {t}: rejects {np.mean(sims < t):.1%}")

    # word check: every in-context synonym of every substitutable word
    pairs = []
    for text in texts:
        parts = w.split(text)
        for slot, cands in synonym_candidates(parts, wordnet).items():
            pairs += [(w.pieces(parts[slot])[1].lower(), c) for c in cands]
    word = probe.encoder.similarity(pairs)
    print(f"attack synonym candidates: {len(pairs)}; word similarity quantiles (5/25/50/75/95%): "
          f"{np.round(np.quantile(word, [.05, .25, .5, .75, .95]), 3).tolist()}")
    for t in (0.4, 0.5, 0.6, 0.7):
        print(f"  word threshold {t}: rejects {np.mean(word < t):.1%}")
    order = np.argsort(word)
    rng = random.Random(args.seed)
    for lo, hi in ((0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 1.01)):
        band = [pairs[i] for i in order if lo <= word[i] < hi]
        print(f"  word similarity in [{lo}, {hi}): " + ", ".join(f"{a}->{b}" for a, b in rng.sample(band, min(12, len(band)))))
    names = sum(substitutable_pos(w.pieces(p)[1], tag) is None and w.is_content_word(w.pieces(p)[1])
                for text in texts for parts in [w.split(text)] for slot, tag in slot_tags(parts).items()
                for p in [parts[slot]])
    print(f"content words kept from substitution as names, proper nouns or POS without synonyms: {names}")


if __name__ == "__main__":
    main()
