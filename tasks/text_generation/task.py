"""Text generation on the task contract (:mod:`hub.task_spec`).

Its data is chat (``data.py``), its models causal LMs, its metrics ROUGE/chrF/BLEU/exact
match and perplexity (the ``generation`` evaluator), its engines torch fp32/bf16 and
onnxruntime-genai (``engines.py``). Parity for generation: on a fixed sample of evaluation
prompts, the share of outputs whose first 32 greedy tokens equal the torch fp32 model's,
the ROUGE-L/chrF delta and the first step's max |Δlogit|; latency is time to first token
and tokens/s at batch 1 and 8 over prompt lengths 32 and 256 (``gen_reports.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.errors import UserError
from hub.task_spec import EvalSplit, Measured, Task

SERVED_CONTEXT = 2048    # tokens of context an engine serves by default (prompt + answer), at most the model's
PARITY_PROMPTS = 24       # evaluation prompts parity and the build run are measured on (seeded sample)


class TextGeneration(Task):
    name = "text-generation"
    pipeline_tag = "text-generation"
    card_task = "Text Generation"
    example_schema = {"messages": "the conversation: role/content turns ending with the assistant's answer "
                                  "(or prompt and response columns)"}
    default_model = "smollm2"
    default_data = "support-chat"
    default_suite = "generation"
    headline_metric = "rougeL"
    evaluators = frozenset({"generation", "refusal", "toxicity", "pii", "generation_fairness",
                            "generation_robustness", "generation_explain"})
    auto_parity_keys = ("token_agreement", "rougeL_delta", "chrf_delta")
    auto_candidates = (("onnxruntime", "int4"), ("onnxruntime", "int8"), ("torch", "bf16"),
                       ("onnxruntime", "fp32"), ("torch", "fp32"))
    demo_tab = "hub.ui.chat_tab:build_chat_tab"   # streaming chat with an engine picker
    # --option parity_prompts=N (evaluation prompts parity is measured on), rouge_bound=X (the ROUGE-L
    # drop, 0-1 scale, an engine may have and pass parity: what `--backend auto` gates on)
    option_keys = frozenset({"parity_prompts", "rouge_bound"})

    def usage_code(self, record: Any, repo_id: str, base: str | None) -> str:
        if record.peft_method != "none":   # the adapter at the repo's root, merged weights in merged/
            code = (f"from peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                    f"base = AutoModelForCausalLM.from_pretrained(\"{base or 'BASE_MODEL'}\")\n"
                    f"model = PeftModel.from_pretrained(base, \"{repo_id}\")\n"
                    f"tokenizer = AutoTokenizer.from_pretrained(\"{repo_id}\")")
        else:
            code = (f"from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                    f"model = AutoModelForCausalLM.from_pretrained(\"{repo_id}\")\n"
                    f"tokenizer = AutoTokenizer.from_pretrained(\"{repo_id}\")")
        return code + ("\n\nmessages = [{\"role\": \"user\", \"content\": \"My printer is offline, what do I do?\"}]\n"
                       "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, "
                       "return_tensors=\"pt\", return_dict=True)\n"
                       "answer = model.generate(**inputs, max_new_tokens=128, do_sample=False)\n"
                       "print(tokenizer.decode(answer[0, inputs[\"input_ids\"].shape[1]:], skip_special_tokens=True))")

    @property
    def data_config(self) -> type:
        from tasks.text_generation.data import GenDataConfig

        return GenDataConfig

    @property
    def train_config(self) -> type:
        from tasks.text_generation.config import TrainConfig

        return TrainConfig

    def check(self, cfg: Any) -> Any:
        from tasks.text_generation.checks import check_run

        return check_run(cfg)

    def check_model_config(self, config: Any, where: str) -> None:
        from tasks.text_generation.model import check_causal_lm

        try:
            check_causal_lm(config, self.name)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None

    def train(self, cfg: Any, store: Any, **options: Any) -> str:
        from tasks.text_generation.train import train

        return train(cfg, store, **options)

    def load_model(self, store: Any, record: Any) -> tuple[Any, Any]:
        """(model, tokenizer) of a stored variant, from safetensors only (base + adapter when not merged)."""
        from safetensors import SafetensorError

        from hub.errors import first_line

        folder = store.variant_folder(record)
        try:
            if record.has_merged:   # written by evalhub: safetensors, no remote code
                from transformers import AutoModelForCausalLM

                model = AutoModelForCausalLM.from_pretrained(folder / "model", use_safetensors=True,
                                                             trust_remote_code=False)
            else:
                from peft import PeftModel

                from tasks.text_generation.model import load_causal_lm, resolve_causal_lm
                from tasks.text_generation.train import model_cache

                spec = record.run_config.get("model", {})
                base, _ = load_causal_lm(resolve_causal_lm(spec.get("name", record.base_model), model_cache(store),
                                                           revision=spec.get("revision")),
                                         revision=spec.get("revision"))
                model = PeftModel.from_pretrained(base, folder / "adapter")
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
            raise UserError(f"variant '{record.id}': its stored files cannot be loaded ({first_line(exc)}); "
                            f"re-train it or remove {folder}") from None
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model.eval(), tokenizer

    def load_predictor(self, store: Any, record: Any, *, batch_size: int = 8, progress: bool = False,
                       **options: Any) -> Any:
        from tasks.text_generation.predict import GenerationPredictor

        model, tokenizer = self.load_model(store, record)
        return GenerationPredictor(model, tokenizer, engine="torch-fp32", batch_size=min(batch_size, 16),
                                   system_prompt=record.run_config.get("data", {}).get("system_prompt"))

    def load_eval_splits(self, record: Any, splits: tuple[str, ...]) -> dict[str, EvalSplit]:
        """split -> (prompts as chat messages, reference responses, content hash, warnings)."""
        from hub.config import from_dict
        from tasks.text_generation.data import GenDataConfig, load_chat_data

        if "data" not in record.run_config:
            raise UserError(f"variant {record.id} was pulled without --data; pull again with --data SOURCE")
        cfg = from_dict(GenDataConfig, record.run_config["data"], f"variant {record.id} data")
        data = load_chat_data(cfg)
        out = {}
        for split in splits:
            if split not in data.splits:
                raise UserError(f"split '{split}' not available for {record.id}; available: {', '.join(data.splits)}")
            warnings = list(data.warnings)
            trained_on = record.dataset.get("hashes", {}).get(split)
            if trained_on and trained_on != data.hashes[split]:
                warnings.append(f"the {split} split of {cfg.source} changed since {record.id} was trained")
            rows = data.splits[split]
            out[split] = EvalSplit([row["messages"][:-1] for row in rows], [row["messages"][-1]["content"] for row in rows],
                                   data.hashes[split], warnings)
        return out

    # --- engines -------------------------------------------------------------------------
    @property
    def engines(self) -> Any:
        from tasks.text_generation.engines import GENERATION_ENGINES

        return GENERATION_ENGINES

    def build_context(self, store: Any, variant: Any, work_dir: Path, options: dict) -> tuple[Any, tuple]:
        import numpy as np

        from hub.engines.steps import max_length_option, number_option, require_merged
        from tasks.text_generation.engines import GenBuildContext

        require_merged(variant)
        n = number_option(options, "parity_prompts", PARITY_PROMPTS, int, 1, None, "a whole number of prompts >= 1")
        bound = number_option(options, "rouge_bound", None, float, 0.0, 1.0, "a ROUGE-L drop from 0 to 1 (0.01 is one point)")
        if bound is not None:
            options["rouge_bound"] = bound      # read by parity, for every candidate
        model, tokenizer = self.load_model(store, variant)
        positions = getattr(model.config, "max_position_embeddings", None)
        # the context an engine serves: the model's own (training's model.max_length only cut examples)
        max_length = max_length_option(options.pop("max_length", min(positions or SERVED_CONTEXT, SERVED_CONTEXT)),
                                       positions)
        split_name = variant.run_config.get("eval", {}).get("split", "test")
        split = self.load_eval_splits(variant, (split_name,))[split_name]
        pick = sorted(np.random.default_rng(variant.seed).choice(len(split.inputs), size=min(n, len(split.inputs)),
                                                                 replace=False))
        sample = EvalSplit([split.inputs[i] for i in pick], [split.references[i] for i in pick], split.data_hash,
                           split.warnings)
        ctx = GenBuildContext(model=model.float().eval(), tokenizer=tokenizer, max_length=max_length,
                              work_dir=work_dir, options=options,
                              source_folder=_source_folder(store.variant_folder(variant), work_dir))
        return ctx, (split_name, sample)

    def reference(self, ctx: Any, split: EvalSplit) -> Any:
        from tasks.text_generation.predict import GenerationPredictor

        return _Memo(GenerationPredictor(ctx.model, ctx.tokenizer, engine="torch-fp32"))

    def parity(self, ctx: Any, reference: Any, predictor: Any, split: EvalSplit, *, quick: bool = False) -> dict:
        from tasks.text_generation.gen_reports import ROUGE_BOUND, parity_report

        return parity_report(reference, predictor, split.inputs, split.references,
                             rouge_bound=ctx.options.get("rouge_bound", ROUGE_BOUND))

    def parity_line(self, parity: dict) -> str:
        return (f"parity: first 32 tokens equal {parity['token_agreement']:.3f}, ROUGE-L Δ {parity['rougeL_delta']:+.4f}, "
                f"max |Δlogit| {parity['max_abs_logit_diff']:.2e} -> {'passed' if parity['passed'] else 'FAILED'}")

    def latency(self, predictor: Any, ctx: Any, *, budget_s: float) -> dict:
        from tasks.text_generation.gen_reports import latency_report

        return latency_report(predictor, ctx.tokenizer, budget_s=budget_s)

    def auto_timing(self, predictor: Any, ctx: Any, *, budget_s: float) -> dict[str, float]:
        """Milliseconds per new token at batch 1 and 8 over the short prompts (lower is better)."""
        from tasks.text_generation.gen_reports import latency_report

        cells = latency_report(predictor, ctx.tokenizer, batches=(1, 8), prompt_lengths=(32,), new_tokens=16,
                               budget_s=budget_s)["cells"]
        return {f"ms_per_token_b{c['batch']}": 1000.0 * c["batch"] / c["tokens_per_s"] for c in cells}

    def measure(self, ctx: Any, record: Any, predictor: Any, split: EvalSplit, reference: Any, *,
                seed: int, budget_s: float, log: Any = print) -> Measured:
        """The build run stores parity (token agreement, the ROUGE-L/chrF deltas, max |Δlogit|) and
        latency, not the parity sample's own ROUGE/chrF/BLEU: a leaderboard row keyed by the split would
        show scores of the sample (24 prompts by default) as the whole split's. ``evalhub eval VARIANT
        --engine ENGINE`` scores the engine on the whole split."""
        from hub.results import MetricResult
        from tasks.text_generation.gen_reports import latency_metrics

        candidate = _Memo(predictor)     # the outputs parity generated are the records' outputs: generated once
        parity = self.parity(ctx, reference, candidate, split)
        log(self.parity_line(parity))
        latency = self.latency(predictor, ctx, budget_s=budget_s)
        outputs = candidate.generate(split.inputs, parity["max_new_tokens"])
        metrics = [MetricResult("token_agreement", parity["token_agreement"]),
                   MetricResult("max_abs_logit_diff", parity["max_abs_logit_diff"], higher_is_better=False),
                   MetricResult("rougeL_delta", parity["rougeL_delta"])]
        if parity.get("chrf_delta") is not None:
            metrics.append(MetricResult("chrf_delta", parity["chrf_delta"]))
        metrics += [MetricResult(name, value, higher_is_better=name.startswith("tokens_per_s"))
                    for name, value in latency_metrics(latency).items()]
        records = [{"idx": i, "prompt": p, "reference": r, "output": o}
                   for i, (p, r, o) in enumerate(zip(split.inputs, split.references, outputs))]
        return Measured(parity=parity, latency=latency, metrics=metrics, records={"generation": records})


def _source_folder(variant_folder: Path, work_dir: Path) -> Path:
    """The merged model and its tokenizer in one Hugging Face folder (ORT-genai's builder reads
    both from one place), as links to the variant's files: nothing is copied."""
    folder = work_dir / "hf-source"
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("model", "tokenizer"):
        for item in (variant_folder / part).iterdir():
            if item.is_file() and not (folder / item.name).exists():
                (folder / item.name).symlink_to(item.resolve())
    return folder


class _Memo:
    """A generation predictor answering each distinct call once: the torch fp32 reference (``auto``
    compares every candidate with it), and a candidate whose parity outputs become the build's records."""

    def __init__(self, predictor: Any) -> None:
        self._predictor = predictor
        self._seen: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._predictor, name)
        if name not in ("generate", "token_ids", "first_step_logits", "perplexity"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            key = repr((name, args, sorted(kwargs.items())))
            if key not in self._seen:
                self._seen[key] = attr(*args, **kwargs)
            return self._seen[key]

        return call


TASK = TextGeneration()
