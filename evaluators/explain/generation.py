"""The `generation_explain` evaluator: which words of a prompt an answer rests on, and how faithfully.

For each sampled prompt the predictor writes its answer (greedy, ``max_target_tokens``), and
the words of the user's turn (``evaluators/prompts.py``) are attributed for that answer's
log-probability by captum:

* ``ablation``: ``LLMAttribution(FeatureAblation)`` over a ``TextTemplateInput`` whose features
  are the user's words (a word is ablated by leaving it out). It only needs logits of a given
  sequence (``predictor.sequence_logits``), so it runs on every engine: the scores are of what
  is served. Sequence mode (one forward over prompt + answer per ablation).
* ``ig``: ``LLMGradientAttribution(LayerIntegratedGradients)`` on the input embeddings of the
  variant's torch model (from the run's context when the suite runs on an engine), over a
  ``TextTokenInput`` whose features are the user's tokens only (the system prompt and the chat
  template's tokens are context, not features); token attributions are summed onto words.

Scores (means over examples, bootstrap CIs), with f(x) = the answer's mean token log-probability
given the prompt x, always computed by the predictor the suite runs on:

    comprehensiveness/<m>   f(x) - f(x without the top-k words), averaged over ``fractions`` (AOPC);
                            higher is better
    sufficiency/<m>         f(x) - f(the top-k words alone), likewise; lower is better
    tau_ablation/ig         Kendall tau-b between the two methods' word attributions
    ig_completeness_gap     |sum of IG attributions - (F(x) - F(baseline))| / max(|F(x) - F(b)|, 1e-3),
                            F = the answer's summed token log-probability on the torch model and the
                            baseline = the user's tokens replaced by the baseline token (what captum
                            integrates from); it shrinks as ``n_steps`` grows

Gradient cost grows with answer length (captum runs one integration per answer token), hence the
small defaults. Hand-written: the glue (captum's wrappers need a model with ``forward(...).logits``
and a tokenizer; :class:`_EngineLM` and :class:`_Tokenizer` adapt any generation predictor to them),
the positions of the user's tokens, and the scores (shared with the classification scorecard:
``faithfulness.py``, ``sanity.py``, ``words.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from evaluators.base import EvalContext
from evaluators.explain.evaluator import check_explain_options, mean_metric
from evaluators.explain.faithfulness import DEFAULT_FRACTIONS, kendall_tau, top_k_mask
from evaluators.explain.sanity import completeness_gap
from evaluators.explain.words import join_kept, to_words, token_word_ids
from evaluators.prompts import user_text, with_user_text
from hub.config import from_dict, opt
from hub.errors import UserError
from hub.results import EvalOutput

METHODS = ("ablation", "ig")
HIGHER_IS_BETTER = {"comprehensiveness": True, "sufficiency": False, "tau_ablation": True,
                    "ig_completeness_gap": False}


@dataclass
class GenerationExplainOptions:
    methods: list[str] = opt(list(METHODS), "ablation (captum LLMAttribution, any engine), ig (captum "
                                            "LLMGradientAttribution, the torch model)")
    max_examples: int = opt(4, "prompts explained: a sample of the split seeded by the run seed (0: all)")
    max_target_tokens: int = opt(12, "tokens of each answer explained (ig runs one integration per token)")
    n_steps: int = opt(16, "integrated-gradients steps (captum's Gauss-Legendre)")
    internal_batch_size: int = opt(8, "rows per forward pass when integrated gradients runs its steps")
    fractions: list[float] = opt(list(DEFAULT_FRACTIONS), "fractions of top words removed/kept, averaged (AOPC)")

    def __post_init__(self) -> None:
        check_explain_options(self, METHODS)
        if min(self.max_target_tokens, self.n_steps, self.internal_batch_size) < 1:
            raise ValueError("max_target_tokens, n_steps and internal_batch_size must be at least 1")


class _Tokenizer:
    """The predictor's tokenizer as captum calls it: ``encode`` of rendered text with the special
    tokens the predictor uses, cut from the left to leave room for the answer."""

    def __init__(self, predictor: Any, answer_tokens: int) -> None:
        self._tok, self._special = predictor.tokenizer, predictor.adds_special_tokens
        self._budget = predictor.context_length - answer_tokens

    def ids(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self._tok(text, add_special_tokens=self._special, return_offsets_mapping=True, verbose=False)
        cut = max(0, len(enc["input_ids"]) - self._budget)
        return list(enc["input_ids"])[cut:], [tuple(o) for o in enc["offset_mapping"]][cut:]

    def encode(self, text: str, add_special_tokens: bool = True, return_tensors: str | None = None) -> Any:
        ids = self.ids(text)[0] if add_special_tokens else self._tok(text, add_special_tokens=False)["input_ids"]
        return torch.tensor([ids], dtype=torch.long) if return_tensors == "pt" else ids

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._tok(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tok, name)


class _EngineLM(torch.nn.Module):
    """A model captum's LLMAttribution can call, over any predictor's ``sequence_logits``."""

    def __init__(self, predictor: Any) -> None:
        super().__init__()
        self.predictor = predictor
        self.device = torch.device("cpu")

    def forward(self, input_ids: torch.Tensor, **_: Any) -> SimpleNamespace:
        rows = [torch.from_numpy(np.asarray(self.predictor.sequence_logits(r.tolist()), dtype=np.float32))
                for r in input_ids]
        return SimpleNamespace(logits=torch.stack(rows))


def _user_token_input(text: str, tokenizer: _Tokenizer, offsets: list[tuple[int, int]], span: tuple[int, int],
                      baseline: int) -> Any:
    """captum's TextTokenInput whose features are the tokens (``offsets``: of ``text``) inside
    ``span`` (the user's words)."""
    from captum.attr import TextTokenInput

    inp = TextTokenInput(text, tokenizer, baselines=baseline)
    mask = torch.tensor([[span[0] <= end - 1 and start < span[1] and end > start for start, end in offsets]])
    inp.itp_mask = mask
    inp.itp_tensor = inp.inp_tensor[mask].unsqueeze(0)
    inp.values = tokenizer.convert_ids_to_tokens(inp.itp_tensor[0].tolist())
    inp.n_itp_features = len(inp.values)
    return inp


class GenerationExplainEvaluator:
    name = "generation_explain"
    needs_gradients = False    # ig fetches the torch model itself; ablation runs on the engine
    options = GenerationExplainOptions

    def evaluate(self, predictor: Any, texts: list[Any], references: list[Any], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, bootstrap: int = 1000,
                 **options: Any) -> EvalOutput:
        opts = from_dict(GenerationExplainOptions, options, "generation_explain options")
        if not callable(getattr(predictor, "sequence_logits", None)):
            raise UserError("evaluator 'generation_explain' needs a generation predictor that scores sequences; "
                            "use 'explain' for a classifier")
        log = context.log if context is not None else print
        examples = _examples(predictor, texts, opts, seed)
        twin = _torch_twin(predictor, context, opts.methods, log)
        attrs: dict[str, list[np.ndarray]] = {}
        scores: dict[str, np.ndarray] = {}
        for method in [m for m in opts.methods if m != "ig" or twin is not None]:
            start = time.perf_counter()
            if method == "ablation":
                attrs[method] = [_ablation(predictor, ex, opts) for ex in examples]
            else:
                results = [_ig(twin, ex, opts) for ex in examples]
                attrs[method] = [a for a, _ in results]
                scores["ig_completeness_gap"] = completeness_gap(np.array([t for _, t in results]).reshape(-1, 2))
            log(f"generation_explain: {method} on {len(examples)} answers in {time.perf_counter() - start:.1f}s")
        scores.update(_faithfulness(predictor, examples, attrs, opts.fractions))
        if len(attrs) == 2:
            scores["tau_ablation/ig"] = np.array([kendall_tau(a, b) for a, b in zip(attrs["ablation"], attrs["ig"])])
        metrics = [m for name, values in scores.items() if (m := mean_metric(name, values, bootstrap, seed, HIGHER_IS_BETTER))]
        records = [{"idx": ex["idx"], "prompt": ex["text"], "answer": ex["answer"], "explained": ex["answer_text"],
                    "words": ex["words"],
                    "attributions": {m: [round(float(v), 6) for v in a[k]] for m, a in attrs.items()},
                    "scores": {n: (round(float(v[k]), 6) if np.isfinite(v[k]) else None) for n, v in scores.items()}}
                   for k, ex in enumerate(examples)]
        return EvalOutput(metrics=metrics, records=records)


def _examples(predictor: Any, texts: list[Any], opts: GenerationExplainOptions, seed: int) -> list[dict]:
    """Sampled prompts with single-spaced user words, and each one's greedy answer to explain."""
    idx = np.arange(len(texts))
    if 0 < opts.max_examples < len(texts):
        idx = np.sort(np.random.default_rng(seed).choice(len(texts), opts.max_examples, replace=False))
    chosen = [(int(i), user_text(texts[i]).split()) for i in idx]
    chosen = [(i, words) for i, words in chosen if words]
    prompts = [with_user_text(texts[i], " ".join(words)) for i, words in chosen]
    answers = predictor.generate(prompts, max_new_tokens=opts.max_target_tokens, seed=seed) if prompts else []
    tok = predictor.tokenizer
    out = []
    for (i, words), prompt, answer in zip(chosen, prompts, answers):
        ids = list(tok(answer, add_special_tokens=False)["input_ids"])[:opts.max_target_tokens]
        # captum re-encodes the decoded answer: drop trailing ids (a cut multi-byte character) until
        # the ids decode and re-encode to themselves
        while ids and list(tok(tok.decode(ids), add_special_tokens=False)["input_ids"]) != ids:
            ids = ids[:-1]
        if ids:
            out.append({"idx": i, "prompt": prompt, "text": " ".join(words), "words": words, "answer": answer,
                        "answer_text": tok.decode(ids), "answer_ids": ids})
    return out


def _torch_twin(predictor: Any, context: EvalContext | None, methods: list[str], log: Any) -> Any:
    """The torch predictor ig runs on (the predictor itself when it is one), or None with a log line."""
    if "ig" not in methods:
        return None
    if getattr(predictor, "engine", None) == "torch-fp32" and isinstance(getattr(predictor, "model", None),
                                                                         torch.nn.Module):
        return predictor
    reason = "no torch model is available"
    if context is not None:   # the fp32 reference, also for a torch-bf16 engine
        try:
            twin = context.torch_predictor()
            log(f"generation_explain: ig runs on the torch model of {context.variant.id}; the scores use "
                f"{getattr(predictor, 'engine', 'the engine')}")
            return twin
        except UserError as exc:
            reason = str(exc)
    log(f"generation_explain: dropping ig on {getattr(predictor, 'engine', 'this predictor')} ({reason})")
    return None


def _ablation(predictor: Any, ex: dict, opts: GenerationExplainOptions) -> np.ndarray:
    from captum.attr import FeatureAblation, LLMAttribution, TextTemplateInput

    tokenizer = _Tokenizer(predictor, len(ex["answer_ids"]))
    words = ex["words"]
    template = lambda *values: predictor.render(with_user_text(ex["prompt"], join_kept(values, [bool(v) for v in values])))  # noqa: E731
    inp = TextTemplateInput(template, values=list(words), baselines=[""] * len(words))
    attr = LLMAttribution(FeatureAblation(_EngineLM(predictor)), tokenizer)
    result = attr.attribute(inp, target=torch.tensor(ex["answer_ids"]), forward_in_tokens=False)
    return result.seq_attr.detach().double().numpy()


def _ig(twin: Any, ex: dict, opts: GenerationExplainOptions) -> tuple[np.ndarray, tuple[float, float]]:
    """Word attributions by integrated gradients, and (their sum, F(x) - F(baseline)) for completeness."""
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution

    tokenizer = _Tokenizer(twin, len(ex["answer_ids"]))
    rendered = twin.render(ex["prompt"])
    start = rendered.rfind(ex["text"])
    if start < 0:
        raise RuntimeError("the chat template changed the user's text; cannot place its tokens")
    baseline = int(twin.pad_id)
    ids, offsets = tokenizer.ids(rendered)
    inp = _user_token_input(rendered, tokenizer, offsets, (start, start + len(ex["text"])), baseline)
    model = twin.model
    lig = LayerIntegratedGradients(model, model.get_input_embeddings())
    result = LLMGradientAttribution(lig, tokenizer).attribute(
        inp, target=torch.tensor(ex["answer_ids"]), n_steps=opts.n_steps, internal_batch_size=opts.internal_batch_size)
    token_attr = result.seq_attr.detach().double().numpy()
    mask = inp.itp_mask[0].numpy()
    user_offsets = [(s - start, e - start) for (s, e), m in zip(offsets, mask) if m]
    words = to_words(token_attr, token_word_ids(user_offsets, [False] * len(user_offsets), ex["words"]),
                     len(ex["words"]))
    base_ids = [baseline if m else t for t, m in zip(ids, mask)]
    f_x, f_b = (float(lp.sum()) for lp in twin.logprob_rows([(ids, ex["answer_ids"]), (base_ids, ex["answer_ids"])]))
    return words, (float(token_attr.sum()), f_x - f_b)


def _faithfulness(predictor: Any, examples: list[dict], attrs: dict[str, list[np.ndarray]],
                  fractions: list[float]) -> dict[str, np.ndarray]:
    """Per example AOPC comprehensiveness and sufficiency of each method, in one scoring call."""
    prompts, answers, owners = [], [], []
    for method, method_attrs in attrs.items():
        for k, (ex, attr) in enumerate(zip(examples, method_attrs)):
            variants = [ex["text"]]
            for fraction in fractions:
                keep = top_k_mask(attr, fraction)
                variants += [join_kept(ex["words"], ~keep), join_kept(ex["words"], keep)]
            prompts += [with_user_text(ex["prompt"], v) for v in variants]
            answers += [ex["answer_text"]] * len(variants)
            owners.append((method, k))
    if not prompts:
        return {}
    f = np.array([lp.mean() if len(lp) else np.nan for lp in predictor.response_logprobs(prompts, answers)])
    width = 1 + 2 * len(fractions)
    scores = {f"{kind}/{m}": np.full(len(examples), np.nan) for m in attrs for kind in ("comprehensiveness", "sufficiency")}
    for row, (method, k) in enumerate(owners):
        block = f[row * width:(row + 1) * width]
        scores[f"comprehensiveness/{method}"][k] = float(np.mean(block[0] - block[1::2]))
        scores[f"sufficiency/{method}"][k] = float(np.mean(block[0] - block[2::2]))
    return scores
