#!/usr/bin/env python
"""evalhub's robustness and explanation evaluators against what a user would write by hand, in one run.

Same variant (the newest MiniLM variant with an engine that passed parity), same test texts,
same settings on both sides of every comparison:

1. Robustness end to end (perturb, predict, score) on ``--examples`` test texts: evalhub's
   `robustness` evaluator (perturbations only, attack off) on the variant's auto engine (what
   ``evalhub eval VARIANT --suite robustness --engine best`` runs; the headline ratio) and on
   its torch model (``ratio_torch``), against nlpaug
   augmenters (KeyboardAug, RandomCharAug swap/delete/insert, SynonymAug with WordNet) applied
   one example at a time, each text classified by a transformers ``pipeline`` call. Figure:
   examples × perturbations per second, and the ratio. Also timed: the auto engine predicting
   only the texts the evaluator builds (``ceiling_predict_only``: the ratio if perturbing and
   scoring were free).
2. Integrated gradients: evalhub's batched ``gradient_attributions`` (fp32, the headline, and
   ``precision="bf16"``) against captum's ``LayerIntegratedGradients`` called once per example
   (same baseline, ``n_steps``). Also timed: the same rows through the fp32 model without
   gradients (``ceiling_forward_only``: no gradient method can be faster than that).
3. Leave-one-out occlusion on the auto engine against the same on the torch predictor.
4. The whole robustness suite (every perturbation, attack off) on the auto engine: wall time.
6. Robustness constraints: the robustness suite with the semantic constraints (``constraints:
   true``: POS-checked synonyms, the MiniLM window check, batched) against the same suite with
   ``constraints: false``, alternating, attack off as in part 4 (target <= 1.5x); also timed,
   the default options that add the unconstrained comparison (``ratio_with_comparison``).
   ``--constraints-only`` runs just this part, on the variant's auto engine, or where the store
   has none, on the embedded MiniLM with an untrained head over bbc-news (attack off, so the
   texts predicted do not depend on the head).
7. Comprehensiveness, sufficiency and tau-LOO of the IG attributions against ferret-xai 0.4.1's
   implementation, fed the same attributions at word level.

Timed candidates alternate (A B A B for ``--rounds`` rounds) and the median is reported.

The baseline's no-op tagger: nlpaug's SynonymAug calls ``nltk.pos_tag``, whose model is a
download these machines cannot make, so ``nltk.pos_tag`` is replaced by a function that tags
every word as a noun ('NN'). SynonymAug then only offers noun synonyms, and the tagger's
cost (which a real tagger would add to the baseline) is missing: the baseline is, if
anything, faster than a user's. nlpaug reads WordNet through ``nltk.corpus.wordnet``, which
needs a file (``index.sense``) that the offline WordNet lacks; it is pointed at the reader
evalhub's ``evaluators/robustness/wordnet.py`` sets up instead (same data).

ferret's top-level package imports its benchmark module (seaborn, LIME, SHAP, …), so only its
``ferret.evaluators`` subpackage is loaded. ferret works on model tokens; it is given a word
"tokenizer" and the same predictor so both sides score the same words (see ``FerretWords``).

The baselines are not evalhub dependencies (ferret-xai 0.4.2 would downgrade transformers);
install them into the venv without their dependency pins first:

    .venv/bin/pip install --no-deps nlpaug==1.1.11 ferret-xai==0.4.1 gdown beautifulsoup4 soupsieve
    .venv/bin/python scripts/bench_evaluators.py --json bench_evaluators.json   # after `evalhub demo`
    .venv/bin/python scripts/bench_evaluators.py --examples 20 --explain-examples 4 --rounds 1  # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.explain.faithfulness import comprehensiveness_sufficiency, tau_against  # noqa: E402
from evaluators.explain.gradients import encode, gradient_attributions  # noqa: E402
from evaluators.explain.perturbation import leave_one_out  # noqa: E402
from evaluators.explain.words import fit_words, to_words  # noqa: E402
from evaluators.robustness import PERTURBATIONS, RobustnessEvaluator  # noqa: E402
from evaluators.robustness.evaluator import sample_indices  # noqa: E402
from evaluators.robustness.perturb import perturb  # noqa: E402
from evaluators.window import read_by  # noqa: E402

FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)


# -- timing -----------------------------------------------------------------------------------------
def alternate(candidates: dict[str, Callable[[], Any]], rounds: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Run A B A B …; median seconds and the last output of each candidate."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    outputs: dict[str, Any] = {}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
            print(f"  {name}: {times[name][-1]:.2f}s", flush=True)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


# -- setup ------------------------------------------------------------------------------------------
def pick_variant(store: Any, variant_id: str | None) -> tuple[Any, Any]:
    """The newest MiniLM variant with an engine that passed parity, and that engine."""
    variants = [store.get_variant(variant_id)] if variant_id else sorted(
        (v for v in store.list_variants() if v.base_model == "minilm"), key=lambda v: v.created_at, reverse=True)
    for variant in variants:
        engine = store.best_engine(variant.id)
        if engine:
            return variant, engine
    raise SystemExit(f"no MiniLM variant with a parity-passing engine in {store.root}")


def load_all(args) -> dict:
    from evaluators.runner import load_eval_split
    from hub.engines.build import load_engine_predictor
    from hub.store import Store
    from tasks.text_classification.predict import load_predictor

    store = Store(args.home)
    variant, engine = pick_variant(store, args.variant)
    texts, refs, _, _ = load_eval_split(variant, "test")
    idx = sample_indices(len(texts), args.examples, args.seed)
    torch_pred = load_predictor(store, variant)
    torch_pred.model.eval()
    return {"variant": variant, "engine": engine, "torch": torch_pred,
            "engine_pred": load_engine_predictor(store, store.get_engine(engine.id), bulk=True),
            "texts": [texts[i] for i in idx], "refs": [int(refs[i]) for i in idx]}


# -- 1. robustness vs nlpaug + pipeline -------------------------------------------------------------
def nlpaug_augmenters(severity: float) -> dict[str, Any]:
    """The hand-written suite; SynonymAug gets a no-op tagger and evalhub's WordNet reader."""
    import nltk
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw

    from evaluators.robustness.wordnet import _open_reader, install_wordnet

    nltk.pos_tag = lambda tokens, *a, **k: [(t, "NN") for t in tokens]   # no tagger offline: all nouns
    sys.modules["nlpaug.model.word_dict.wordnet"].wordnet = _open_reader(install_wordnet())
    return {"keyboard": nac.KeyboardAug(aug_word_p=severity),
            "char_swap": nac.RandomCharAug(action="swap", aug_word_p=severity),
            "char_delete": nac.RandomCharAug(action="delete", aug_word_p=severity),
            "char_insert": nac.RandomCharAug(action="insert", aug_word_p=severity),
            "synonyms": naw.SynonymAug(aug_src="wordnet", aug_p=severity)}


def hand_robustness(clf: Any, augs: dict[str, Any], texts: list[str], refs: list[int], label2id: dict,
                    max_length: int, seed: int) -> dict:
    """One example at a time: augment, classify with the pipeline, count flips and accuracy."""
    random.seed(seed)
    np.random.seed(seed)
    def top(text: str) -> int:
        scores = clf(text, truncation=True, max_length=max_length)
        scores = scores[0] if isinstance(scores[0], list) else scores   # one text: [[{label, score}, ...]]
        return label2id[max(scores, key=lambda s: s["score"])["label"]]

    flips, correct, augment_s = dict.fromkeys(augs, 0), dict.fromkeys(augs, 0), 0.0
    for text, ref in zip(texts, refs):
        clean = top(text)
        for name, aug in augs.items():
            start = time.perf_counter()
            out = aug.augment(text)
            augment_s += time.perf_counter() - start
            pred = top(out[0] if isinstance(out, list) else out)
            flips[name] += int(pred != clean)
            correct[name] += int(pred == ref)
    n = len(texts)
    return {"augment_s": augment_s,
            **{name: {"flip_rate": flips[name] / n, "accuracy": correct[name] / n} for name in augs}}


def bench_robustness(d: dict, args) -> dict:
    from transformers import pipeline

    pred, texts, refs = d["torch"], d["texts"], d["refs"]
    labels = d["variant"].labels
    augs = nlpaug_augmenters(args.severity)
    clf = pipeline("text-classification", model=pred.model, tokenizer=pred.tokenizer, top_k=None)
    label2id = {**{v: int(k) for k, v in pred.model.config.id2label.items()}, **{l: i for i, l in enumerate(labels)}}
    evaluator = RobustnessEvaluator()

    def run_evalhub(predictor: Any) -> Callable[[], Any]:
        return lambda: evaluator.evaluate(predictor, texts, refs, labels, seed=args.seed, attack=False,
                                          max_examples=None, severity=args.severity)
    run_hand = lambda: hand_robustness(clf, augs, texts, refs, label2id, pred.max_length, args.seed)  # noqa: E731
    # The ceiling: the auto engine predicting the very texts the evaluator builds, nothing else.
    engine_texts = evaluated_texts(d["engine_pred"], texts, args)
    for predictor in (pred, d["engine_pred"]):      # warm-up: WordNet, first calls
        evaluator.evaluate(predictor, texts[:4], refs[:4], labels, attack=False)
    hand_robustness(clf, augs, texts[:4], refs[:4], label2id, pred.max_length, args.seed)
    med, out = alternate({"evalhub_auto_engine": run_evalhub(d["engine_pred"]), "evalhub_torch": run_evalhub(pred),
                          "nlpaug+pipeline": run_hand,
                          "predict_only_auto_engine": lambda: d["engine_pred"].predict_proba(engine_texts)},
                         args.rounds)
    units = {"evalhub_auto_engine": len(texts) * len(PERTURBATIONS), "evalhub_torch": len(texts) * len(PERTURBATIONS),
             "nlpaug+pipeline": len(texts) * len(augs), "predict_only_auto_engine": len(texts) * len(PERTURBATIONS)}
    rate = {k: units[k] / med[k] for k in med}
    return {"examples": len(texts), "severity": args.severity, "engine": d["engine"].id,
            "perturbations": {"evalhub": list(PERTURBATIONS), "nlpaug+pipeline": list(augs)},
            "median_s": med, "examples_x_perturbations_per_s": rate,
            "ratio": rate["evalhub_auto_engine"] / rate["nlpaug+pipeline"],
            "ratio_torch": rate["evalhub_torch"] / rate["nlpaug+pipeline"], "target": ">= 10x",
            # what the ratio would be if perturbing and scoring cost nothing
            "ceiling_predict_only": rate["predict_only_auto_engine"] / rate["nlpaug+pipeline"],
            "distinct_inputs_run": {"evalhub_torch": pred.distinct, "of": len(texts) * (1 + len(PERTURBATIONS))},
            "evalhub_metrics": {k: {m.name: round(m.value, 4) for m in out[k].metrics}
                                for k in ("evalhub_auto_engine", "evalhub_torch")},
            "baseline_scores": out["nlpaug+pipeline"]}


def evaluated_texts(predictor: Any, texts: list[str], args) -> list[str]:
    """The clean and perturbed texts the robustness evaluator sends to ``predictor``, in its order."""
    sub = read_by(predictor, texts)
    return sub + [perturb(name, text, args.severity, seed=args.seed, key=i)
                  for name in PERTURBATIONS for i, text in enumerate(sub)]


# -- 2. integrated gradients ------------------------------------------------------------------------
def baseline_ids(enc: Any, pad_id: int) -> torch.Tensor:
    special = enc["special_tokens_mask"].bool()
    return torch.where(special, enc["input_ids"], torch.full_like(enc["input_ids"], pad_id))


def captum_one_by_one(model: Any, tokenizer: Any, max_length: int, words_list: list, targets: np.ndarray,
                      n_steps: int) -> list[torch.Tensor]:
    """What captum's tutorial does: one LayerIntegratedGradients call per example."""
    from captum.attr import LayerIntegratedGradients

    forward = lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits  # noqa: E731
    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    out = []
    for words, target in zip(words_list, targets):
        enc = tokenizer(" ".join(words), truncation=True, max_length=max_length, return_tensors="pt",
                        return_special_tokens_mask=True)
        attr = lig.attribute(enc["input_ids"], baselines=baseline_ids(enc, tokenizer.pad_token_id),
                             target=int(target), additional_forward_args=(enc["attention_mask"],), n_steps=n_steps)
        out.append(attr.sum(dim=-1)[0].detach())
    return out


@torch.no_grad()
def forward_only(model: Any, tokenizer: Any, max_length: int, words_list: list, n_steps: int) -> None:
    """The ceiling: each example's ``n_steps`` rows through the fp32 model, no gradients."""
    for words in words_list:
        enc = tokenizer(" ".join(words), truncation=True, max_length=max_length, return_tensors="pt")
        model(input_ids=enc["input_ids"].expand(n_steps, -1), attention_mask=enc["attention_mask"].expand(n_steps, -1))


def bench_ig(d: dict, words_list: list, targets: np.ndarray, args) -> tuple[dict, list]:
    pred = d["torch"]
    model, tok, ml = pred.model, pred.tokenizer, pred.max_length

    def run_evalhub(precision: str) -> Callable[[], Any]:
        return lambda: gradient_attributions(model, tok, ml, words_list, targets, "ig", n_steps=args.n_steps,
                                             precision=precision)[0]
    run_captum = lambda: captum_one_by_one(model, tok, ml, words_list, targets, args.n_steps)  # noqa: E731
    for precision in ("fp32", "bf16"):   # warm-up, every path
        gradient_attributions(model, tok, ml, words_list[:1], targets[:1], "ig", n_steps=2, precision=precision)
    captum_one_by_one(model, tok, ml, words_list[:1], targets[:1], 2)
    forward_only(model, tok, ml, words_list[:1], 2)
    med, out = alternate({"evalhub_batched": run_evalhub("fp32"), "evalhub_batched_bf16": run_evalhub("bf16"),
                          "captum_per_example": run_captum,
                          "fp32_forward_only": lambda: forward_only(model, tok, ml, words_list, args.n_steps)},
                         args.rounds)
    captum_words = [to_words(a.numpy(), encode(tok, [w], ml).token_words[0], len(w))
                    for a, w in zip(out["captum_per_example"], words_list)]
    diff = {k: max(float(np.max(np.abs(a - b))) for a, b in zip(out[k], captum_words))
            for k in ("evalhub_batched", "evalhub_batched_bf16")}
    scale = max(float(np.max(np.abs(a))) for a in captum_words)
    base = med["captum_per_example"]
    return ({"examples": len(words_list), "n_steps": args.n_steps, "median_s": med,
             "ratio": base / med["evalhub_batched"], "target": ">= 3x",
             "ratio_bf16": base / med["evalhub_batched_bf16"],
             # no gradient method can beat a forward pass over the same rows without gradients
             "ceiling_forward_only": base / med["fp32_forward_only"],
             "max_abs_diff_word_attr": diff["evalhub_batched"], "max_abs_diff_word_attr_bf16": diff["evalhub_batched_bf16"],
             "max_abs_word_attr": scale}, out["evalhub_batched"])


# -- 3. occlusion on the engine ---------------------------------------------------------------------
def bench_occlusion(d: dict, words_list: list, targets: np.ndarray, args) -> tuple[dict, list]:
    joined = [" ".join(w) for w in words_list]
    bases = {k: np.asarray(d[k].predict_proba(joined), dtype=np.float64) for k in ("engine_pred", "torch")}
    med, out = alternate({"auto_engine": lambda: leave_one_out(d["engine_pred"], words_list, targets, bases["engine_pred"]),
                          "torch": lambda: leave_one_out(d["torch"], words_list, targets, bases["torch"])}, args.rounds)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(out["auto_engine"], out["torch"]))
    tau = np.nanmean(tau_against(out["torch"], out["auto_engine"]))
    return ({"examples": len(words_list), "texts_per_side": sum(len(w) for w in words_list),
             "engine": d["engine"].id, "median_s": med, "ratio": med["torch"] / med["auto_engine"],
             "target": ">= 3x", "max_abs_diff_vs_torch": diff, "mean_kendall_tau_vs_torch": float(tau)},
            out["torch"])


# -- 4. the suite on the engine ---------------------------------------------------------------------
def bench_suite_on_engine(d: dict, args) -> dict:
    start = time.perf_counter()
    out = RobustnessEvaluator().evaluate(d["engine_pred"], d["texts"], d["refs"], d["variant"].labels,
                                         seed=args.seed, attack=False, max_examples=None, severity=args.severity)
    wall = time.perf_counter() - start
    return {"engine": d["engine"].id, "examples": len(d["texts"]), "perturbations": len(PERTURBATIONS),
            "wall_s": wall, "target": "< 60 s", "metrics": {m.name: round(m.value, 4) for m in out.metrics}}


# -- 6. constraints ------------------------------------------------------------------------------------
def bench_constraints(pred: Any, texts: list[str], refs: list[int], labels: list[str], args) -> dict:
    run = lambda **opts: RobustnessEvaluator().evaluate(  # noqa: E731
        pred, texts, refs, labels, seed=args.seed, attack=False, severity=args.severity,
        **{"max_examples": None, **opts})
    run(constraints=True, max_examples=4)   # load the encoder and tagger outside the timing
    times, outs = alternate({"unconstrained": lambda: run(constraints=False),
                             "constrained": lambda: run(constraints=True, compare_unconstrained=False),
                             "constrained_with_comparison": lambda: run(constraints=True)}, args.rounds)
    metrics = {m.name: round(m.value, 4) for m in outs["constrained_with_comparison"].metrics
               if "synonyms" in m.name or m.name.endswith("flip_rate")}
    return {"examples": len(texts), "seconds": times, "ratio": times["constrained"] / times["unconstrained"],
            "ratio_with_comparison": times["constrained_with_comparison"] / times["unconstrained"],
            "target": "<= 1.5x", "metrics": metrics}


def constraints_only(args) -> dict:
    """Part 6 alone: on the store's auto engine when it has a variant, else on the embedded MiniLM."""
    try:
        d = load_all(args)
        return bench_constraints(d["engine_pred"], d["texts"], d["refs"], d["variant"].labels, args)
    except SystemExit as exc:
        print(f"{exc}: timing on the embedded MiniLM with an untrained head instead")
    from hub.embedded_data import read_embedded
    from hub.models import load_classifier, load_tokenizer
    from tasks.text_classification.predict import TorchPredictor

    df = read_embedded("bbc-news")
    labels = sorted(df.label.unique())
    idx = sample_indices(len(df), args.examples, args.seed)
    pred = TorchPredictor(load_classifier("minilm", labels).eval(), load_tokenizer("minilm"), labels, max_length=128)
    return bench_constraints(pred, [df.text.iloc[i] for i in idx], [labels.index(df.label.iloc[i]) for i in idx],
                             labels, args)


# -- 7. faithfulness vs ferret ----------------------------------------------------------------------
def import_ferret() -> Any:
    """ferret.evaluators.faithfulness_measures without ferret/__init__ (which needs seaborn, lime, shap)."""
    spec = importlib.util.find_spec("ferret")
    if spec is None:
        raise ImportError("ferret-xai is not installed")
    pkg = types.ModuleType("ferret")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("ferret", pkg)
    from ferret.evaluators import faithfulness_measures as fm
    from ferret.evaluators import utils_from_soft_to_discrete as soft
    from ferret.explainers.explanation import Explanation

    original = soft._get_id_tokens_top_k

    def top_k(scores: Any, k: int, only_pos: bool = True) -> Any:
        # ferret 0.4.1 tests `array == []`, which numpy rejects when only_pos=False: return a list
        if only_pos:
            return original(scores, k, only_pos=True)
        return [int(i) for i in np.argsort(np.asarray(scores))[-k:][::-1]] or None

    soft._get_id_tokens_top_k = top_k
    return fm, Explanation


class FerretWords:
    """ferret's ModelHelper and tokenizer, at word level: token i is word i, decode joins words."""

    cls_token = None           # never equal to a word, so ferret keeps every score
    mask_token_id = None

    def __init__(self, predictor: Any) -> None:
        self.predictor, self.tokenizer, self.words = predictor, self, []

    def _tokenize(self, text: str, **_: Any) -> dict:
        self.words = text.split()
        n = len(self.words)
        return {"input_ids": torch.arange(n).view(1, -1), "attention_mask": torch.ones(1, n, dtype=torch.long)}

    def decode(self, ids: Any) -> str:
        return " ".join(self.words[int(i)] for i in ids)

    def _forward(self, text: Any, output_hidden_states: bool = False) -> tuple[None, torch.Tensor]:
        probs = self.predictor.predict_proba([text] if isinstance(text, str) else list(text))
        return None, torch.log(torch.as_tensor(np.asarray(probs, dtype=np.float64)))  # softmax(log p) = p


def ferret_scores(fm: Any, Explanation: Any, predictor: Any, words_list: list, attrs: list, targets: np.ndarray,
                  settings: Callable[[int], dict], tau: bool) -> dict[str, np.ndarray]:
    helper = FerretWords(predictor)
    classes = {"comprehensiveness": fm.AOPC_Comprehensiveness_Evaluation,
               "sufficiency": fm.AOPC_Sufficiency_Evaluation, "tau_loo": fm.TauLOO_Evaluation}
    out: dict[str, list[float]] = {k: [] for k in classes if tau or k != "tau_loo"}
    for key in out:
        cls = classes[key]
        evaluator = cls.__new__(cls)
        evaluator.helper = helper
        for words, attr, target in zip(words_list, attrs, targets):
            expl = Explanation(" ".join(words), list(words), np.asarray(attr), "ig", int(target))
            out[key].append(float(evaluator.compute_evaluation(expl, target=int(target), **settings(len(words))).score))
    return {k: np.asarray(v) for k, v in out.items()}


def max_diff(a: np.ndarray, b: np.ndarray) -> float | None:
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[both] - b[both]))) if both.any() else None


def bench_ferret(d: dict, words_list: list, attrs: list, loo: list, targets: np.ndarray) -> dict:
    fm, Explanation = import_ferret()
    pred = d["torch"]
    base = np.asarray(pred.predict_proba([" ".join(w) for w in words_list]), dtype=np.float64)
    comp, suff = comprehensiveness_sufficiency(pred, words_list, attrs, targets, base, FRACTIONS)
    ours = {"comprehensiveness": comp, "sufficiency": suff, "tau_loo": tau_against(loo, attrs)}
    common = {"remove_first_last": False, "only_pos": False}
    runs = {  # ferret told to take evalhub's rationale sizes (ceil), its own floor of the same %, its defaults
        "k_matched": lambda n: {**common, "removal_args": {"based_on": "k", "thresholds": [
            min(n, max(1, math.ceil(f * n - 1e-9))) for f in FRACTIONS]}},
        "perc_same_fractions": lambda n: {**common, "removal_args": {"based_on": "perc", "thresholds": list(FRACTIONS)}},
        "ferret_defaults": lambda n: {"remove_first_last": False},
    }
    result = {"evalhub_means": {k: float(np.nanmean(v)) for k, v in ours.items()}}
    for name, settings in runs.items():
        theirs = ferret_scores(fm, Explanation, pred, words_list, attrs, targets, settings, tau=name == "k_matched")
        result[name] = {"max_abs_diff": {k: max_diff(ours[k], theirs[k]) for k in theirs},
                        "ferret_means": {k: float(np.nanmean(v)) for k, v in theirs.items()}}
    return result


# -- main -------------------------------------------------------------------------------------------
def run_part(results: dict, name: str, fn: Callable[[], Any]) -> Any:
    print(f"\n== {name}", flush=True)
    try:
        out = fn()
    except Exception as exc:  # a failing part is reported, the others still run
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  FAILED: {results[name]['error']}")
        return None
    part = out[0] if isinstance(out, tuple) else out
    results[name] = part
    print(json.dumps(part, indent=2, default=str))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="evalhub store (default $EVALHUB_HOME or ./.evalhub)")
    parser.add_argument("--variant", help="variant id (default: newest MiniLM with a parity-passing engine)")
    parser.add_argument("--examples", type=int, default=200, help="test texts for the robustness parts")
    parser.add_argument("--explain-examples", type=int, default=20, help="texts for IG, occlusion, faithfulness")
    parser.add_argument("--n-steps", type=int, default=32)
    parser.add_argument("--severity", type=float, default=0.15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write all figures here")
    parser.add_argument("--constraints-only", action="store_true", help="run only part 6 (robustness constraints)")
    args = parser.parse_args(argv)
    if args.constraints_only:
        results = {"robustness_constraints": constraints_only(args)}
        print(json.dumps(results, indent=2, default=str))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        return 0
    d = load_all(args)
    results: dict[str, Any] = {"variant": d["variant"].id, "engine": d["engine"].id, "torch": torch.__version__,
                               "threads": torch.get_num_threads(), "rounds": args.rounds}
    print(f"variant {d['variant'].id}, engine {d['engine'].id}, {torch.get_num_threads()} torch threads")
    pred = d["torch"]
    words_list = fit_words(d["texts"][:args.explain_examples], pred.tokenizer, pred.max_length)
    targets = pred.predict_proba([" ".join(w) for w in words_list]).argmax(axis=1)
    run_part(results, "robustness_vs_nlpaug_pipeline", lambda: bench_robustness(d, args))
    ig = run_part(results, "ig_batched_vs_captum", lambda: bench_ig(d, words_list, targets, args))
    occ = run_part(results, "occlusion_engine_vs_torch", lambda: bench_occlusion(d, words_list, targets, args))
    run_part(results, "robustness_suite_on_engine", lambda: bench_suite_on_engine(d, args))
    run_part(results, "robustness_constraints", lambda: bench_constraints(
        d["engine_pred"], d["texts"], d["refs"], d["variant"].labels, args))
    if ig and occ:
        run_part(results, "faithfulness_vs_ferret", lambda: bench_ferret(d, words_list, ig[1], occ[1], targets))
    summary(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


def summary(results: dict) -> None:
    print("\n== summary")
    for name in ("robustness_vs_nlpaug_pipeline", "ig_batched_vs_captum", "occlusion_engine_vs_torch"):
        r = results.get(name, {})
        print(f"{name}: " + (f"{r['ratio']:.2f}x (target {r['target']})" if "ratio" in r else r.get("error", "-"))
              + (f"; on torch {r['ratio_torch']:.2f}x" if "ratio_torch" in r else "")
              + (f"; bf16 {r['ratio_bf16']:.2f}x" if "ratio_bf16" in r else "")
              + "".join(f"; {k} {r[k]:.2f}x" for k in ("ceiling_predict_only", "ceiling_forward_only") if k in r))
    r = results.get("robustness_suite_on_engine", {})
    print("robustness_suite_on_engine: " + (f"{r['wall_s']:.1f}s (target {r['target']})" if "wall_s" in r
                                            else r.get("error", "-")))
    r = results.get("robustness_constraints", {})
    print("robustness_constraints: " + (f"{r['ratio']:.2f}x (target {r['target']}); with the unconstrained "
                                         f"comparison {r['ratio_with_comparison']:.2f}x" if "ratio" in r
                                         else r.get("error", "-")))
    r = results.get("faithfulness_vs_ferret", {})
    if "k_matched" in r:
        for run in ("k_matched", "perc_same_fractions", "ferret_defaults"):
            print(f"ferret {run} max |diff|: {r[run]['max_abs_diff']}")
    elif r:
        print(f"faithfulness_vs_ferret: {r.get('error')}")


if __name__ == "__main__":
    sys.exit(main())
