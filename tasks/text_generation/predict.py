"""The text-generation predictors: the eager torch reference, and the front every generation
engine shares.

Every generation engine answers the same calls, so evaluators, parity and the demo never care
which backend runs:

* ``generate(prompts, max_new_tokens=None, *, do_sample=False, temperature=1.0, top_p=1.0,
  seed=0) -> list[str]``; ``stream(prompt, ...) -> Iterator[str]`` (text pieces);
* ``token_ids(prompts, n)`` (the first ``n`` greedy token ids, for parity) and
  ``first_step_logits(prompts) -> np.ndarray [n, vocab]``;
* ``response_logprobs(prompts, responses)`` (each given response token's log-probability,
  teacher-forced: what perplexity, explanations and their faithfulness score) over
  ``sequence_logits(ids) -> np.ndarray [len, vocab]`` of one row;
* ``generate_ids(rows, max_new_tokens, ignore_eos=False)`` on raw prompt token ids (the
  latency grid feeds exact lengths through it);
* ``last_stats``: ``{"new_tokens", "seconds", "tokens_per_s", "ttft_s"}`` of the last call.

A prompt is a string or a list of chat messages, rendered with the tokenizer's chat template
(:func:`tasks.text_generation.chat.render_prompt`). A prompt longer than the context minus
``max_new_tokens`` is cut from the left (the end of a conversation is what the model answers),
with a warning once per predictor, never a crash.

Generation itself is transformers' ``generate`` (left padding, greedy or sampling) and its
``TextIteratorStreamer``; hand-written here: the left truncation, the per-call statistics (the
time to the first token is taken by a logits processor, which ``generate`` calls once per step
for any batch size) and the per-example perplexity of a reference response.

Seeded sampling runs one prompt at a time, each with its own seed (``seed + index``), so that
a sample never depends on which other prompts shared its batch; greedy runs in batches.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from hub.errors import UserError
from tasks.text_generation.chat import render_prompt

log = logging.getLogger(__name__)
TASK = "text-generation"


class GenPredictorBase:
    """Prompt rendering, left truncation and statistics; subclasses implement the model calls."""

    task = TASK
    labels: list[str] = []

    def __init__(self, tokenizer: Any, *, engine: str, max_new_tokens: int, batch_size: int,
                 context_length: int, system_prompt: str | None) -> None:
        if max_new_tokens < 1 or batch_size < 1:
            raise UserError(f"{engine}: max_new_tokens and batch_size must be >= 1 "
                            f"(got {max_new_tokens} and {batch_size})")
        self.tokenizer = tokenizer
        self.engine = engine
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.context_length = int(context_length)
        self.system_prompt = system_prompt
        self.labels = []
        self.truncated = 0              # prompts cut from the left by the last call
        self.last_stats: dict[str, Any] = {"new_tokens": 0, "seconds": 0.0, "tokens_per_s": 0.0, "ttft_s": None}
        self._warned = False

    # ---- prompts -----------------------------------------------------------------------------
    def render(self, prompt: Any) -> str:
        """The text the model reads for ``prompt``: its chat template applied (a string as it is
        for a base LM)."""
        return render_prompt(self.tokenizer, prompt, self.system_prompt)

    @property
    def adds_special_tokens(self) -> bool:
        """Whether rendered text is tokenized with the tokenizer's special tokens: the chat
        template writes them itself; a base LM's text gets the tokenizer's own."""
        return not getattr(self.tokenizer, "chat_template", None)

    def encode(self, prompts: Sequence[Any], max_new_tokens: int) -> list[list[int]]:
        """Token ids of each rendered prompt, cut from the left to fit the context."""
        budget = self.context_length - max_new_tokens
        if budget < 1:
            raise UserError(f"{self.engine}: max_new_tokens={max_new_tokens} leaves no room for the prompt "
                            f"in a context of {self.context_length} tokens; ask for fewer new tokens")
        special = self.adds_special_tokens
        rows = []
        self.truncated = 0
        for prompt in prompts:
            if not isinstance(prompt, (str, list)):
                raise UserError(f"{self.engine}: a prompt is text or a list of chat messages, "
                                f"not {type(prompt).__name__}")
            text = self.render(prompt)
            # verbose=False: no "longer than the maximum" notice from the tokenizer; the row is cut below
            ids = list(self.tokenizer(text, add_special_tokens=special, verbose=False)["input_ids"])
            if len(ids) > budget:
                self.truncated += 1
                ids = ids[-budget:]
            rows.append(ids)
        if self.truncated and not self._warned:
            self._warned = True
            log.warning("%s: %d prompt(s) longer than %d tokens (context %d - %d new) were cut from the left "
                        "(said once per predictor)", self.engine, self.truncated, budget, self.context_length,
                        max_new_tokens)
        return rows

    def _new(self, max_new_tokens: int | None) -> int:
        n = self.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        if n < 1:
            raise UserError(f"{self.engine}: max_new_tokens must be >= 1, not {n}")
        return n

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def record(self, new_tokens: int, seconds: float, ttft_s: float | None) -> None:
        self.last_stats = {"new_tokens": int(new_tokens), "seconds": float(seconds),
                           "tokens_per_s": float(new_tokens / seconds) if seconds > 0 else 0.0,
                           "ttft_s": None if ttft_s is None else float(ttft_s)}

    @property
    def eos_ids(self) -> set[int]:
        eos = getattr(self, "_eos", None)
        if eos is None:
            eos = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        return eos

    def cut_at_eos(self, ids: Sequence[int]) -> list[int]:
        """The generated ids up to and including the first end-of-sequence token."""
        out = []
        for t in ids:
            out.append(int(t))
            if int(t) in self.eos_ids:
                break
        return out

    # ---- scoring a given response -------------------------------------------------------------
    def response_logprobs(self, prompts: Sequence[Any], responses: Sequence[str]) -> list[np.ndarray]:
        """Per example, the log-probability of each token of ``responses[i]`` after the rendered
        ``prompts[i]`` (teacher forcing; an empty response gives an empty array). The prompt is
        cut from the left so that prompt and response fit the context; a response longer than
        the context keeps its first ``context - 1`` tokens."""
        prompts, responses = list(prompts), list(responses)
        if len(prompts) != len(responses):
            raise UserError(f"{self.engine}: {len(prompts)} prompts but {len(responses)} responses")
        pairs = []
        for prompt_ids, response in zip(self.encode(prompts, 1), responses):
            ids = list(self.tokenizer(response, add_special_tokens=False, verbose=False)["input_ids"])
            ids = ids[:self.context_length - 1]
            pairs.append((prompt_ids[-(self.context_length - len(ids)):], ids))
        scored = [(i, pair) for i, pair in enumerate(pairs) if pair[1]]
        out = [np.zeros(0, dtype=np.float64) for _ in pairs]
        for (i, _), logp in zip(scored, self.logprob_rows([pair for _, pair in scored])):
            out[i] = logp
        return out

    def perplexity(self, prompts: Sequence[Any], references: Sequence[str]) -> list[float]:
        """Per example exp(mean negative log-likelihood of the reference's tokens given the rendered
        prompt); NaN for an empty reference."""
        return [float(np.exp(-logp.mean())) if len(logp) else float("nan")
                for logp in self.response_logprobs(prompts, references)]

    def logprob_rows(self, pairs: list[tuple[list[int], list[int]]]) -> list[np.ndarray]:
        """Per (prompt ids, response ids): each response token's log-probability, one
        :meth:`sequence_logits` call per pair (backends with batched scoring override it)."""
        out = []
        for p, r in pairs:
            logits = self.sequence_logits(p + r)[len(p) - 1:len(p) + len(r) - 1].astype(np.float64)
            logits -= logits.max(axis=-1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
            out.append(logp[np.arange(len(r)), r])
        return out

    def sequence_logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits [len(ids), vocab] of one row of token ids; position t predicts token t + 1."""
        raise NotImplementedError(f"{self.engine} cannot score a given sequence")

    # ---- the shared calls --------------------------------------------------------------------
    def generate(self, prompts: Sequence[Any], max_new_tokens: int | None = None, *, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> list[str]:
        prompts = list(prompts)
        if not prompts:
            self.record(0, 0.0, None)
            return []
        n = self._new(max_new_tokens)
        rows = self.encode(prompts, n)
        out = self.generate_ids(rows, n, do_sample=do_sample, temperature=temperature, top_p=top_p, seed=seed)
        return [self.decode(ids) for ids in out]

    def token_ids(self, prompts: Sequence[Any], n: int) -> list[list[int]]:
        """The first ``n`` greedy token ids after each prompt (fewer where it ends sooner)."""
        prompts = list(prompts)
        return self.generate_ids(self.encode(prompts, n), n) if prompts else []

    def generate_ids(self, rows: list[list[int]], max_new_tokens: int, *, do_sample: bool = False,
                     temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                     ignore_eos: bool = False) -> list[list[int]]:  # pragma: no cover - abstract
        raise NotImplementedError


class _FirstStep:
    """A logits processor that notes when ``generate`` first asks for the next token's scores:
    the prompt has been read and the first token is about to be chosen."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.at is None:
            self.at = time.perf_counter()
        return scores


class _Stop:
    """A stopping criterion the consumer of a stream sets when it stops reading."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _counting_streamer(tokenizer: Any) -> Any:
    """transformers' ``TextIteratorStreamer`` that also counts the new tokens it was given."""
    from transformers import TextIteratorStreamer

    class Counting(TextIteratorStreamer):
        new_tokens = 0

        def put(self, value: torch.Tensor) -> None:
            if not (self.skip_prompt and self.next_tokens_are_prompt):
                self.new_tokens += int(value.numel())
            super().put(value)

    return Counting(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)


class GenerationPredictor(GenPredictorBase):
    """The torch engine (eager; fp32 is the reference every other engine is compared with)."""

    def __init__(self, model: Any, tokenizer: Any, *, engine: str = "torch-fp32", max_new_tokens: int = 128,
                 batch_size: int = 8, context_length: int | None = None, system_prompt: str | None = None) -> None:
        context = context_length or getattr(model.config, "max_position_embeddings", None) or 2048
        super().__init__(tokenizer, engine=engine, max_new_tokens=max_new_tokens, batch_size=batch_size,
                         context_length=context, system_prompt=system_prompt)
        self.model = model.eval()
        eos = getattr(model.generation_config, "eos_token_id", None) or getattr(model.config, "eos_token_id", None)
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self._eos = set(eos) | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self._eos, default=0)

    def _batch(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        """Left-padded ids and mask, so every row's last prompt token sits at the same position."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
                mask[i, width - len(r):] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def _kwargs(self, n: int, do_sample: bool, temperature: float, top_p: float, ignore_eos: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": n, "do_sample": bool(do_sample), "pad_token_id": self.pad_id,
                                  "eos_token_id": sorted(self._eos) or None}
        if do_sample:
            if temperature <= 0 or not 0 < top_p <= 1:
                raise UserError(f"{self.engine}: sampling needs temperature > 0 and 0 < top_p <= 1 "
                                f"(got {temperature} and {top_p})")
            kwargs |= {"temperature": float(temperature), "top_p": float(top_p), "top_k": 0}
        else:   # greedy: no sampling settings, so generate does not warn that they are unused
            kwargs |= {"temperature": None, "top_p": None, "top_k": None}
        if ignore_eos:
            kwargs["min_new_tokens"] = n
        return kwargs

    def generate_ids(self, rows: list[list[int]], max_new_tokens: int, *, do_sample: bool = False,
                     temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                     ignore_eos: bool = False) -> list[list[int]]:
        from transformers import LogitsProcessorList

        kwargs = self._kwargs(max_new_tokens, do_sample, temperature, top_p, ignore_eos)
        out: list[list[int]] = []
        first = _FirstStep()
        start = time.perf_counter()
        step = 1 if do_sample else self.batch_size
        for b0 in range(0, len(rows), step):
            batch = self._batch(rows[b0:b0 + step])
            with torch.inference_mode(), torch.random.fork_rng(devices=[]):
                if do_sample:
                    torch.manual_seed(int(seed) + b0)
                gen = self.model.generate(**batch, **kwargs, logits_processor=LogitsProcessorList([first]))
            width = batch["input_ids"].shape[1]
            out.extend(self.cut_at_eos(row[width:].tolist()) for row in gen)
        seconds = time.perf_counter() - start
        self.record(sum(len(r) for r in out), seconds, None if first.at is None else first.at - start)
        return out

    def stream(self, prompt: Any, max_new_tokens: int | None = None, *, do_sample: bool = False,
               temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> Iterator[str]:
        """Text pieces as they are generated. Stopping early (``break``, ``close()``) stops the
        generating thread at its next step and joins it."""
        from transformers import LogitsProcessorList, StoppingCriteriaList

        n = self._new(max_new_tokens)
        batch = self._batch(self.encode([prompt], n))
        kwargs = self._kwargs(n, do_sample, temperature, top_p, ignore_eos=False)
        streamer = _counting_streamer(self.tokenizer)
        stop, first = _Stop(), _FirstStep()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with torch.inference_mode(), torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seed))
                    self.model.generate(**batch, **kwargs, streamer=streamer,
                                        logits_processor=LogitsProcessorList([first]),
                                        stopping_criteria=StoppingCriteriaList([stop]))
            except BaseException as exc:   # re-raised in the consumer's thread
                failure.append(exc)
                streamer.end()

        return self._stream(work, streamer, stop, first, failure, batch["input_ids"].shape[1])

    def _stream(self, work: Any, streamer: Any, stop: _Stop, first: _FirstStep, failure: list,
                width: int) -> Iterator[str]:
        thread = threading.Thread(target=work, name=f"{self.engine}-stream", daemon=True)
        start = time.perf_counter()
        ttft, pieces = None, 0
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    ttft = time.perf_counter() - start if ttft is None else ttft
                    pieces += 1
                    yield piece
        finally:
            stop.event.set()
            thread.join()
            seconds = time.perf_counter() - start
            self.record(streamer.new_tokens, seconds, None if first.at is None else first.at - start)
        if failure:
            raise failure[0]

    def first_step_logits(self, prompts: Sequence[Any]) -> np.ndarray:
        """fp32 logits of the first generated position, one row per prompt."""
        prompts = list(prompts)
        vocab = self.model.get_output_embeddings().weight.shape[0]
        if not prompts:
            return np.zeros((0, vocab), dtype=np.float32)
        rows = self.encode(prompts, 1)
        out = []
        for b0 in range(0, len(rows), self.batch_size):
            batch = self._batch(rows[b0:b0 + self.batch_size])
            positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(**batch, position_ids=positions, logits_to_keep=1).logits[:, -1]
            out.append(logits.float().numpy())
        return np.concatenate(out).astype(np.float32)

    def logprob_rows(self, pairs: list[tuple[list[int], list[int]]]) -> list[np.ndarray]:
        """Per pair (prompt ids, response ids): the log-probability of each response token."""
        out: list[np.ndarray] = []
        for b0 in range(0, len(pairs), self.batch_size):
            chunk = pairs[b0:b0 + self.batch_size]
            # right padding: a causal model's real positions never see the padding after them
            width = max(len(p) + len(r) for p, r in chunk)
            ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, (p, r) in enumerate(chunk):
                ids[i, :len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
                mask[i, :len(p) + len(r)] = 1
            with torch.inference_mode():
                logp = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for i, (p, r) in enumerate(chunk):
                # the token at position t is predicted by the logits at t - 1
                pos = torch.arange(len(p) - 1, len(p) + len(r) - 1)
                out.append(logp[i, pos, torch.tensor(r, dtype=torch.long)].numpy().astype(np.float64))
        return out

    def sequence_logits(self, ids: Sequence[int]) -> np.ndarray:
        """fp32 logits [len(ids), vocab] of one unpadded row of token ids (position t predicts t + 1)."""
        with torch.inference_mode():
            row = torch.tensor([list(ids)], dtype=torch.long)
            return self.model(input_ids=row, attention_mask=torch.ones_like(row)).logits[0].float().numpy()
