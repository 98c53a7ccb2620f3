"""Generation engines: torch (fp32 reference, bf16) and onnxruntime-genai (int4, int8, fp32).

They have the shape of the classification backends (:class:`hub.engines.base.Backend`:
``name``, ``precisions``, ``is_available``, ``check``, ``build(ctx, folder, precision)``,
``load(folder, record, tokenizer, labels)``, ``machine``) so the build pipeline treats every
engine alike; ``build`` gets a :class:`GenBuildContext` and ``load`` returns a predictor with
the generation calls of :mod:`tasks.text_generation.predict`.

* torch: the (bf16-cast) model and its tokenizer saved as safetensors in ``folder/model``.
* onnxruntime-genai: its model builder (``python -m onnxruntime_genai.models.builder``), run in
  a subprocess because it prints freely and holds the whole model in memory while it writes;
  the ONNX model, ``genai_config.json`` and the tokenizer land in ``folder/genai``. Generation
  runs on ``og.Model`` / ``og.Generator``; the prompt is rendered with the Hugging Face
  tokenizer's chat template (the same text the torch reference reads) and fed as token ids.

Hand-written in :class:`GenAIPredictor`: the token loop, incremental decoding for streaming
(decode the new ids so far, yield what was added; a piece ending in an unfinished UTF-8
character waits for the next token) and the statistics. Prompts run one at a time: genai
0.18's batching of left-padded rows gave other greedy tokens than the same prompts alone (seen
on the tiny test model, fp32), and it reads every ``pad_token_id`` in a row as padding, while
an instruct model whose pad token is its end-of-turn token (SmolLM2's) has that token in every
chat prompt.

Options: ``int4_block_size`` (16..256, the builder's default 32), ``int4_accuracy_level``
(1-4, the builder's default).
"""

from __future__ import annotations

import copy
import importlib
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from hub.engines.base import Backend, EngineRecord
from hub.errors import UserError, clean
from hub.registry import Registry
from tasks.text_generation.predict import GenerationPredictor, GenPredictorBase

log = logging.getLogger(__name__)
GENAI_PACKAGE = "onnxruntime_genai"


@dataclass
class GenBuildContext:
    """Everything a generation backend needs to build."""

    model: Any                         # transformers causal LM, eval mode, fp32, on CPU
    tokenizer: Any
    max_length: int                    # context length the engine serves
    work_dir: Path                     # scratch space shared by the backends of one build
    options: dict[str, Any] = field(default_factory=dict)
    source_folder: Path | None = None  # the merged model saved on disk (ORT-genai's builder reads it)

    def source(self) -> Path:
        """The model as a Hugging Face folder on disk; saved into ``work_dir`` when none was given."""
        if self.source_folder is not None:
            return Path(self.source_folder)
        folder = Path(self.work_dir) / "hf-source"
        if not (folder / "config.json").is_file():
            self.model.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)
        self.source_folder = folder
        return folder


def _predictor_options(record: EngineRecord) -> dict[str, Any]:
    keys = ("max_new_tokens", "batch_size", "system_prompt")
    return {k: record.options[k] for k in keys if record.options.get(k) is not None}


class GenTorchBackend(Backend):
    name = "torch"
    package = "torch"
    precisions = ("fp32", "bf16")
    install_hint = "pip install torch"

    def build(self, ctx: GenBuildContext, folder: Path, precision: str) -> dict[str, Any]:
        import torch

        from hub.engines.torch_backend import DTYPES, cpu_features, weights_sha256

        # a copy: the context's fp32 model is shared with the other backends of the build
        model = copy.deepcopy(ctx.model).to(DTYPES[precision]).eval()
        model.save_pretrained(folder / "model")       # safetensors only
        ctx.tokenizer.save_pretrained(folder / "model")
        return {"dtype": str(DTYPES[precision]).removeprefix("torch."), "torch": torch.__version__,
                "context_length": int(ctx.max_length), "weights_sha256": weights_sha256(folder / "model"),
                **cpu_features()}

    def load(self, folder: Path, record: EngineRecord, tokenizer: Any, labels: list[str]) -> GenerationPredictor:
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from hub.engines.torch_backend import DTYPES, weights_sha256

        path = Path(folder) / "model"
        if not (path / "config.json").is_file():
            raise UserError(f"torch engine folder {folder} has no model/config.json; rebuild the engine")
        digest = record.options.get("weights_sha256")
        if digest and weights_sha256(path) != digest:
            raise UserError(f"torch engine weights in {path} do not match the checksum recorded at build time; "
                            "rebuild the engine")
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[record.precision], use_safetensors=True)
        except (SafetensorError, OSError, ValueError) as exc:
            raise UserError(f"torch engine weights in {path} cannot be read ({clean(exc, 200)}); "
                            "rebuild the engine") from None
        tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(path)
        return GenerationPredictor(model.eval(), tokenizer, engine=f"torch-{record.precision}",
                                   context_length=record.options.get("context_length") or record.max_length,
                                   **_predictor_options(record))

    def machine(self) -> dict[str, Any]:
        import torch

        return {**super().machine(), "torch": torch.__version__}


def genai_unavailable() -> str | None:
    """Why onnxruntime-genai cannot be used here, or None when it can."""
    try:
        importlib.import_module(GENAI_PACKAGE)
    except ImportError as exc:
        return (f"onnxruntime-genai cannot be imported ({clean(exc, 160)}); "
                "pip install onnxruntime-genai==0.18.0 (it needs onnxruntime >= 1.31)")
    return None


def _builder_extras(options: dict[str, Any], precision: str) -> list[str]:
    extras = []
    size = options.get("int4_block_size")
    if size is not None:
        if precision != "int4" or str(size) not in {"16", "32", "64", "128", "256"}:
            raise UserError(f"--option int4_block_size={size}: expected 16, 32, 64, 128 or 256, for an int4 build")
        extras.append(f"int4_block_size={size}")
    level = options.get("int4_accuracy_level")
    if level is not None:
        if precision != "int4" or str(level) not in {"1", "2", "3", "4"}:
            raise UserError(f"--option int4_accuracy_level={level}: expected 1, 2, 3 or 4, for an int4 build")
        extras.append(f"int4_accuracy_level={level}")
    return extras


def run_builder(source: Path, out: Path, precision: str, cache: Path, extras: Sequence[str] = ()) -> Path:
    """onnxruntime-genai's model builder in a subprocess; its output goes to ``<cache>.log`` (the
    builder removes its cache folder when done) and a failure is a UserError quoting the last lines."""
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(out),
           "-p", precision, "-e", "cpu", "-c", str(cache)]
    if extras:
        cmd += ["--extra_options", *extras]
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    cache.with_name(cache.name + ".log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr, encoding="utf-8")
    if proc.returncode != 0 or not (out / "genai_config.json").is_file():
        tail = " | ".join(line.strip() for line in (proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise UserError(f"onnxruntime-genai's model builder could not build {precision} from {source} "
                        f"(exit {proc.returncode}): {clean(tail, 500)}")
    return out


class GenOrtBackend(Backend):
    name = "onnxruntime"
    package = GENAI_PACKAGE
    precisions = ("int4", "int8", "fp32")
    install_hint = "pip install onnxruntime-genai==0.18.0"
    option_keys = frozenset({"int4_block_size", "int4_accuracy_level"})

    def is_available(self) -> bool:
        return genai_unavailable() is None

    def check(self, precision: str) -> None:
        reason = genai_unavailable()
        if reason:
            raise UserError(f"backend '{self.name}' (text-generation): {reason}")
        super().check(precision)

    def build(self, ctx: GenBuildContext, folder: Path, precision: str) -> dict[str, Any]:
        import onnxruntime
        import onnxruntime_genai as og

        extras = _builder_extras(ctx.options, precision)
        config = ctx.model.config
        head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        if head % 16:
            raise UserError(f"onnxruntime-genai's CPU attention (GroupQueryAttention) needs a head size that is a "
                            f"multiple of 16; this model's is {head}: use the torch backend for it")
        start = time.perf_counter()
        run_builder(ctx.source(), Path(folder) / "genai", precision, Path(ctx.work_dir) / f"genai-{precision}",
                    extras)
        return {"builder": "onnxruntime_genai.models.builder", "execution_provider": "cpu",
                "extra_options": extras, "build_s": round(time.perf_counter() - start, 1),
                "onnxruntime_genai": og.__version__, "onnxruntime": onnxruntime.__version__}

    def load(self, folder: Path, record: EngineRecord, tokenizer: Any, labels: list[str]) -> GenAIPredictor:
        import onnxruntime_genai as og
        from transformers import AutoTokenizer

        self.check(record.precision)
        path = Path(folder) / "genai"
        if not (path / "genai_config.json").is_file():
            raise UserError(f"engine '{record.id}': {path}/genai_config.json is missing; rebuild the engine")
        try:
            model = og.Model(str(path))
        except Exception as exc:   # genai raises RuntimeError/OrtException with the reason
            raise UserError(f"engine '{record.id}': onnxruntime-genai cannot load {path} ({clean(exc, 200)}); "
                            "rebuild the engine") from None
        tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(path)
        return GenAIPredictor(model, tokenizer, path, engine=f"onnxruntime-genai-{record.precision}",
                              **_predictor_options(record))

    def machine(self) -> dict[str, Any]:
        import onnxruntime_genai as og

        return {**super().machine(), "onnxruntime_genai": og.__version__}


class GenAIPredictor(GenPredictorBase):
    """Generation on an onnxruntime-genai model, with the calls of the torch reference."""

    def __init__(self, model: Any, tokenizer: Any, folder: Path, *, engine: str, max_new_tokens: int = 128,
                 batch_size: int = 8, system_prompt: str | None = None) -> None:
        import json

        config = json.loads((Path(folder) / "genai_config.json").read_text(encoding="utf-8"))["model"]
        super().__init__(tokenizer, engine=engine, max_new_tokens=max_new_tokens, batch_size=batch_size,
                         context_length=int(config["context_length"]), system_prompt=system_prompt)
        self.model = model
        self.vocab_size = int(config["vocab_size"])
        eos = config.get("eos_token_id")
        self._eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self.pad_id = int(config.get("pad_token_id", 0) or 0)

    def _generator(self, rows: list[list[int]], max_new: int, *, do_sample: bool, temperature: float,
                   top_p: float, seed: int, ignore_eos: bool) -> Any:
        import onnxruntime_genai as og

        width = max(len(r) for r in rows)
        params = og.GeneratorParams(self.model)
        search: dict[str, Any] = {"max_length": width + max_new, "do_sample": bool(do_sample),
                                  "batch_size": len(rows)}
        if do_sample:
            if temperature <= 0 or not 0 < top_p <= 1:
                raise UserError(f"{self.engine}: sampling needs temperature > 0 and 0 < top_p <= 1 "
                                f"(got {temperature} and {top_p})")
            search |= {"temperature": float(temperature), "top_p": float(top_p), "top_k": 0,
                       "random_seed": int(seed)}
        if ignore_eos:
            search["min_length"] = width + max_new
        params.set_search_options(**search)
        generator = og.Generator(self.model, params)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int32)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = r
        generator.append_tokens(ids)
        return generator

    def generate_ids(self, rows: list[list[int]], max_new_tokens: int, *, do_sample: bool = False,
                     temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                     ignore_eos: bool = False) -> list[list[int]]:
        step = 1     # one prompt at a time: see the module docstring
        out: list[list[int]] = []
        ttft = None
        start = time.perf_counter()
        for b0 in range(0, len(rows), step):
            chunk = rows[b0:b0 + step]
            generator = self._generator(chunk, max_new_tokens, do_sample=do_sample, temperature=temperature,
                                        top_p=top_p, seed=int(seed) + b0, ignore_eos=ignore_eos)
            new: list[list[int]] = [[] for _ in chunk]
            while not generator.is_done():
                generator.generate_next_token()
                ttft = time.perf_counter() - start if ttft is None else ttft
                for i, t in enumerate(generator.get_next_tokens()):
                    new[i].append(int(t))
            out.extend(self.cut_at_eos(r) for r in new)
            del generator
        self.record(sum(len(r) for r in out), time.perf_counter() - start, ttft)
        return out

    def stream(self, prompt: Any, max_new_tokens: int | None = None, *, do_sample: bool = False,
               temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> Iterator[str]:
        n = self._new(max_new_tokens)
        rows = self.encode([prompt], n)
        return self._stream(rows, n, do_sample=do_sample, temperature=temperature, top_p=top_p, seed=seed)

    def _stream(self, rows: list[list[int]], n: int, **search: Any) -> Iterator[str]:
        start = time.perf_counter()
        ttft, ids, shown = None, [], ""
        generator = self._generator(rows, n, ignore_eos=False, **search)
        try:
            while not generator.is_done():
                generator.generate_next_token()
                ttft = time.perf_counter() - start if ttft is None else ttft
                ids.append(int(generator.get_next_tokens()[0]))
                text = self.decode(ids)
                if len(text) > len(shown) and text.startswith(shown) and not text.endswith("\ufffd"):
                    piece, shown = text[len(shown):], text
                    yield piece
            text = self.decode(ids)
            if text != shown:
                yield text[len(shown):] if text.startswith(shown) else text
        finally:
            del generator
            self.record(len(ids), time.perf_counter() - start, ttft)

    def sequence_logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits [len(ids), vocab] of one row: the whole row appended at once, then
        ``generator.get_output("logits")``, which holds every appended position."""
        ids = [int(t) for t in ids]
        generator = self._generator([ids], 1, do_sample=False, temperature=1.0, top_p=1.0, seed=0, ignore_eos=False)
        try:
            logits = np.asarray(generator.get_output("logits"), dtype=np.float32)
        finally:
            del generator
        logits = logits.reshape(-1, logits.shape[-1])
        if len(logits) != len(ids):
            raise RuntimeError(f"{self.engine}: the model returned logits for {len(logits)} of {len(ids)} positions")
        return logits

    def first_step_logits(self, prompts: Sequence[Any]) -> np.ndarray:
        """Logits of the first generated position (``generator.get_output("logits")`` after the
        prompt: [batch, prompt length, vocab], of which the last position)."""
        prompts = list(prompts)
        if not prompts:
            return np.zeros((0, self.vocab_size), dtype=np.float32)
        out = []
        for row in self.encode(prompts, 1):
            generator = self._generator([row], 1, do_sample=False, temperature=1.0, top_p=1.0, seed=0,
                                        ignore_eos=False)
            logits = np.asarray(generator.get_output("logits"))
            out.append(logits.reshape(-1, logits.shape[-1])[-1].astype(np.float32))
            del generator
        return np.stack(out)


class GenTensorRTBackend(Backend):
    """Asked for by name, it says why there is none: generation on TensorRT needs TensorRT-LLM."""

    name = "tensorrt"
    precisions = ("fp16", "int8")
    why = ("backend 'tensorrt' builds encoder engines only; text generation on TensorRT needs TensorRT-LLM, "
           "which is not installable here (NVIDIA's own index); build 'onnxruntime' (int4, int8, fp32) or "
           "'torch' (fp32, bf16) engines for text-generation variants")

    def is_available(self) -> bool:
        return False

    def check(self, precision: str) -> None:
        raise UserError(self.why)


GENERATION_ENGINES: Registry = Registry("text-generation engine backend")
GENERATION_ENGINES.register("torch", GenTorchBackend)
GENERATION_ENGINES.register("onnxruntime", GenOrtBackend)
GENERATION_ENGINES.register("tensorrt", GenTensorRTBackend)
