"""Text classification on the task contract (:mod:`hub.task_spec`).

Its data is labelled text (``hub.data``), its models are ``*ForSequenceClassification``,
its engines are the encoder backends of ``hub.engines`` (one forward pass over token ids,
exported to ONNX/OpenVINO/TensorRT), and parity is judged on argmax agreement and accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hub.errors import UserError
from hub.task_spec import EvalSplit, Measured, Task

CALIBRATION_EXAMPLES = 128   # NNCF and ORT static calibration; more adds build time, not accuracy here


class TextClassification(Task):
    name = "text-classification"
    pipeline_tag = "text-classification"
    card_task = "Text Classification"
    example_schema = {"text": "the input text", "label": "its class (a name or an integer)"}
    default_model = "minilm"
    default_data = "bbc-news"
    default_suite = "default"
    headline_metric = "accuracy"
    has_labels = True
    pullable = True
    auto_parity_keys = ("agreement", "accuracy_delta", "explanation_tau", "explanation_topk_overlap")
    # --option explanation_texts=N (texts explanation parity explains; 0: none), min_explanation_tau=T
    # (an engine whose mean Kendall tau against torch's occlusion ranking is below T fails parity)
    option_keys = frozenset({"explanation_texts", "min_explanation_tau"})
    evaluators = frozenset({"classification", "robustness", "fairness", "toxicity", "pii", "refusal", "explain"})
    # Fastest-first guesses for a recent x86 CPU (DESIGN.md); the measurement decides.
    auto_candidates = (("openvino", "int8"), ("openvino", "bf16"), ("onnxruntime", "int8"), ("torch", "bf16"),
                       ("tensorrt", "fp16"), ("tensorrt", "int8"), ("onnxruntime", "fp32"), ("torch", "fp32"))
    demo_tab = "hub.ui.demo_tab:build_demo_tab"

    def usage_code(self, record: Any, repo_id: str, base: str | None) -> str:
        if record.peft_method != "none":
            code = (f"from peft import PeftModel\nfrom transformers import AutoModelForSequenceClassification, "
                    f"AutoTokenizer\n\nbase = AutoModelForSequenceClassification.from_pretrained(\n    "
                    f"\"{base or 'BASE_MODEL'}\", num_labels={len(record.labels)})\n"
                    f"model = PeftModel.from_pretrained(base, \"{repo_id}\")\n"
                    f"tokenizer = AutoTokenizer.from_pretrained(\"{repo_id}\")")
        else:
            code = (f"from transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
                    f"model = AutoModelForSequenceClassification.from_pretrained(\"{repo_id}\")\n"
                    f"tokenizer = AutoTokenizer.from_pretrained(\"{repo_id}\")")
        if "pruning" in (record.train_summary or {}):   # evalhub's pruned-BERT config: its class must be known first
            code = ("import tasks.text_classification.pruned_bert  # noqa: F401 - registers evalhub-pruned-bert "
                    "(evalhub's own package)\n" + code)
        return code + ("\n\ninputs = tokenizer([\"a sentence to classify\"], return_tensors=\"pt\", truncation=True)\n"
                       "probs = model(**inputs).logits.softmax(-1)")

    @property
    def data_config(self) -> type:
        from hub.run_config import DataConfig

        return DataConfig

    @property
    def train_config(self) -> type:
        from tasks.text_classification.config import TrainConfig

        return TrainConfig

    def check(self, cfg: Any) -> Any:
        from tasks.text_classification.checks import check_run

        return check_run(cfg)

    def check_model_config(self, config: Any, where: str) -> None:
        from tasks.text_classification.checks import check_architecture

        check_architecture(config, where)

    def train(self, cfg: Any, store: Any, **options: Any) -> str:
        from tasks.text_classification.train import train

        return train(cfg, store, **options)

    def load_predictor(self, store: Any, record: Any, **options: Any) -> Any:
        from tasks.text_classification.predict import load_predictor

        return load_predictor(store, record, **options)

    def load_eval_splits(self, record: Any, splits: tuple[str, ...]) -> dict[str, EvalSplit]:
        """split -> (texts, label ids, content hash, warnings), read once, in the variant's label order."""
        from hub.config import from_dict
        from hub.data import load_data
        from hub.run_config import DataConfig

        if "data" not in record.run_config:   # `evalhub pull` without --data: nothing to score it on yet
            raise UserError(f"variant {record.id} was pulled without --data; pull again with --data SOURCE")
        # a variant stored before splits were deduplicated is scored on the splits it was trained with
        data_cfg = from_dict(DataConfig, {"deduplicate": False, **record.run_config["data"]},
                             f"variant {record.id} data")
        data = load_data(data_cfg, labels=record.labels)
        out = {}
        for split in splits:
            if split not in data.splits:
                raise UserError(f"split '{split}' not available for {record.id}; available: {', '.join(data.splits)}")
            warnings = list(data.report.warnings)
            trained_on = record.dataset.get("hashes", {}).get(split)
            if trained_on and trained_on != data.hashes[split]:
                warnings.append(f"the {split} split of {data_cfg.source} changed since {record.id} was trained")
            ds = data.splits[split]
            out[split] = EvalSplit(list(ds["text"]), list(ds["label"]), data.hashes[split], warnings)
        return out

    # --- engines -------------------------------------------------------------------------
    @property
    def engines(self) -> Any:
        from hub.registries import ENGINES

        return ENGINES

    def build_context(self, store: Any, variant: Any, work_dir: Path, options: dict) -> tuple[Any, tuple]:
        """The merged fp32 model, its tokenizer, calibration texts and the evaluation split."""
        from evaluators.explain.agreement import SAMPLE
        from hub.engines.base import BuildContext
        from hub.engines.steps import max_length_option, number_option, require_merged
        from tasks.text_classification.predict import load_model

        require_merged(variant)

        explain_n = number_option(options, "explanation_texts", SAMPLE, int, 0, None, "a whole number of texts >= 0")
        min_tau = number_option(options, "min_explanation_tau", None, float, -1.0, 1.0, "a Kendall tau from -1 to 1")
        if min_tau is not None and not explain_n:
            raise UserError("--option min_explanation_tau needs explanation_texts above 0")
        model, tokenizer = load_model(store, variant)
        max_length = max_length_option(options.pop("max_length", variant.run_config.get("model", {}).get("max_length", 128)),
                                       getattr(model.config, "max_position_embeddings", None))
        split = variant.run_config.get("eval", {}).get("split", "test")
        splits = self.load_eval_splits(variant, ("train", split))   # one read of the data for both
        train_texts = splits["train"].inputs
        rng = np.random.default_rng(variant.seed)
        pick = rng.choice(len(train_texts), size=min(CALIBRATION_EXAMPLES, len(train_texts)), replace=False)
        ctx = BuildContext(model=model.float().eval(), tokenizer=tokenizer, labels=variant.labels,
                           max_length=max_length, calibration_texts=[train_texts[i] for i in sorted(pick)],
                           work_dir=work_dir, options=options)
        ctx.memo.update(explanation_texts=explain_n, min_explanation_tau=min_tau)
        return ctx, (split, splits[split])

    def reference(self, ctx: Any, split: EvalSplit) -> np.ndarray:
        from tasks.text_classification.predict import TorchPredictor

        return TorchPredictor(ctx.model, ctx.tokenizer, ctx.labels, max_length=ctx.max_length).logits(split.inputs)

    def parity(self, ctx: Any, reference: np.ndarray, predictor: Any, split: EvalSplit, *,
               quick: bool = False) -> dict:
        from hub.engines.reports import parity_report

        report = parity_report(reference, predictor.logits(split.inputs), np.asarray(split.references))
        return self._with_explanations(ctx, report, predictor, split)

    def _with_explanations(self, ctx: Any, report: dict, predictor: Any, split: EvalSplit) -> dict:
        """``report`` with explanation parity: the engine's occlusion attributions against the torch
        model's on a fixed sample of the split (``evaluators/explain/agreement.py``); the reference's
        side is computed once per build. ``min_explanation_tau`` turns it into a gate."""
        from evaluators.explain import agreement
        from tasks.text_classification.predict import TorchPredictor

        n = ctx.memo.get("explanation_texts", agreement.SAMPLE)
        if not n:
            return report
        if "explanations" not in ctx.memo:
            torch_model = TorchPredictor(ctx.model, ctx.tokenizer, ctx.labels, max_length=ctx.max_length)
            ctx.memo["explanations"] = agreement.explain_reference(torch_model, split.inputs, tokenizer=ctx.tokenizer,
                                                                   max_length=ctx.max_length, n=n)
        report.update(agreement.explanation_parity(ctx.memo["explanations"], predictor))
        floor, tau = ctx.memo.get("min_explanation_tau"), report.get("explanation_tau")
        if floor is not None:
            report["min_explanation_tau"] = floor
            report["passed"] = bool(report["passed"] and tau is not None and tau >= floor)
        return report

    def parity_line(self, parity: dict) -> str:
        tau = parity.get("explanation_tau")
        explained = (f", explanations τ {tau:.3f} / top-{parity['explanation_top_k']} overlap "
                     f"{parity['explanation_topk_overlap']:.3f}" if tau is not None else "")
        return (f"parity: agreement {parity['agreement']:.4f}, max |Δlogit| {parity['max_abs_logit_diff']:.2e}, "
                f"accuracy Δ {parity['accuracy_delta']:+.4f}{explained} -> {'passed' if parity['passed'] else 'FAILED'}")

    def latency(self, predictor: Any, ctx: Any, *, budget_s: float) -> dict:
        from hub.engines.reports import latency_report

        return latency_report(predictor, ctx.tokenizer, budget_s=budget_s)

    def auto_timing(self, predictor: Any, ctx: Any, *, budget_s: float) -> dict[str, float]:
        """p50 at batch 1 and 32 at the longest sequence length (ranked by their geometric mean)."""
        from hub.engines import reports

        cells = reports.latency_report(predictor, ctx.tokenizer, batches=(1, 32), seqs=(ctx.max_length,),
                                       budget_s=budget_s)["cells"]
        return {f"p50_ms_b{cell['batch']}": cell["p50_ms"] for cell in cells}

    def measure(self, ctx: Any, record: Any, predictor: Any, split: EvalSplit, reference: np.ndarray, *,
                seed: int, budget_s: float, log: Any = print) -> Measured:
        from evaluators.task_metrics import ClassificationEvaluator
        from hub.engines.reports import latency_metrics, parity_report
        from hub.results import MetricResult

        candidate = predictor.logits(split.inputs)
        parity = self._with_explanations(ctx, parity_report(reference, candidate, np.asarray(split.references)),
                                         predictor, split)
        log(self.parity_line(parity))
        latency = self.latency(predictor, ctx, budget_s=budget_s)
        out = ClassificationEvaluator().evaluate(_Fixed(predictor, candidate), split.inputs, list(split.references),
                                                 ctx.labels, seed=seed)
        extra = [MetricResult("agreement", parity["agreement"]),
                 MetricResult("max_abs_logit_diff", parity["max_abs_logit_diff"], higher_is_better=False),
                 MetricResult("accuracy_delta", parity["accuracy_delta"])]
        extra += [MetricResult(name, parity[name]) for name in ("explanation_tau", "explanation_topk_overlap")
                  if parity.get(name) is not None]
        extra += [MetricResult(name, value, higher_is_better=name.startswith("throughput"))
                  for name, value in latency_metrics(latency).items()]
        return Measured(parity=parity, latency=latency, metrics=out.metrics + extra, predictions=out.predictions)


class _Fixed:
    """A predictor that answers with logits already computed (no second pass over the split)."""

    def __init__(self, predictor: Any, logits: np.ndarray) -> None:
        from hub.predictor import softmax

        self.labels, self.engine = predictor.labels, predictor.engine
        self._probs = softmax(logits.astype(np.float64)).astype(np.float32)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self._probs


TASK = TextClassification()
