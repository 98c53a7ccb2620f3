"""The Chat tab: the demo widget of text-generation variants (``Task.demo_tab``).

Pick a variant and an engine, type a message, and the answer streams in token by token
(``gr.Chatbot``); the line under it says which engine answered, how many tokens it wrote and
how fast (tokens/s, time to the first token). The conversation so far is the prompt: each
turn goes through the variant's chat template with its system prompt, and a conversation
longer than the model's context is cut from the left by the predictor (never a crash).
Examples are the first user turns of the variant's own test prompts. Decoding is greedy by
default (what the scores were measured with); "Sample" turns on seeded sampling.

The safety guard (toxicity, PII: ``evaluators/safety/guard.py``) checks every finished answer:
its flags show under the answer and personal data in the answer is masked in the chat (the
stream shows the text as it comes; the finished turn replaces it).

Predictors come from the app's bounded cache (``hub/ui/predictor_cache.py``), so the torch
model and every generation engine (torch bf16, onnxruntime-genai int4/int8/fp32) answer the
same ``stream`` call. One answer is generated at a time (``concurrency_limit=1``): on two
cores a second concurrent answer only halves the speed of both, and the tokens/s line of an
answer is that answer's own. **Stop** cancels the stream; the generating thread stops at its
next token.

API endpoint (``gradio_client``): ``/chat`` (variant_id, message, history, engine,
max_new_tokens, sample, temperature, top_p, seed) -> (history, message box, answered-by
line), streamed; ``history`` is the chatbot's value (a list of ``{"role", "content"}``).
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

import gradio as gr

from hub.errors import UserError
from hub.ui import demo_tab, live
from hub.ui.demo_tab import default_engine, engine_choices
from hub.ui.predictor_cache import TORCH_MODEL

log = logging.getLogger(__name__)

CHAT_TAB = "hub.ui.chat_tab:build_chat_tab"   # what a generation task names as its demo widget
TAB_ID, TAB_LABEL = "chat", "Chat"
MAX_NEW_TOKENS, DEFAULT_NEW_TOKENS = 512, 128
EXAMPLES = [   # shown only while the variant's test prompts cannot be read
    "My laptop will not connect to the wifi network. What should I try?",
    "How do I reset a forgotten password on my account?",
    "The printer says it is offline but it is switched on.",
]
NO_VARIANTS = """\
**No text-generation variants yet.** Train one with
`evalhub train hub/examples/support-chat-lora.yaml`, then reload this page.
"""


def variant_choices(store: Any) -> list[tuple[str, str]]:
    """(label, value) pairs of the variants whose task demos on this widget, newest first."""
    return demo_tab.variant_choices(store, CHAT_TAB)


def pick_variant(store: Any, current: str | None, preferred: str | None = None) -> tuple[list, str | None]:
    """The choices and the selection, chosen as the Demo tab chooses (``demo_tab.pick_variant``)."""
    return demo_tab.pick_variant(store, current, preferred, CHAT_TAB)


def history_messages(history: Any) -> list[dict[str, str]]:
    """The chatbot's value as plain chat messages: gradio 6 hands content over as a list of
    ``{"type": "text", "text": ...}`` parts; a client may send plain strings."""
    messages = []
    for message in history or []:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
            raise live.Refused("The chat history is not a list of {role, content} messages.")
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise live.Refused("Only text messages can be sent to the model.")
        messages.append({"role": message["role"], "content": content})
    return messages


def check_settings(max_new_tokens: Any, sample: bool, temperature: Any, top_p: Any) -> int:
    """The number of new tokens when the settings are usable; Refused otherwise."""
    try:
        n = int(max_new_tokens)
    except (TypeError, ValueError):
        raise live.Refused(f"max_new_tokens must be a whole number from 1 to {MAX_NEW_TOKENS}.") from None
    if not 1 <= n <= MAX_NEW_TOKENS:
        raise live.Refused(f"max_new_tokens must be from 1 to {MAX_NEW_TOKENS}, not {n}.")
    if sample and not (float(temperature) > 0 and 0 < float(top_p) <= 1):
        raise live.Refused("Sampling needs a temperature above 0 and a top-p in (0, 1].")
    return n


def guarded(answer: str) -> tuple[dict[str, str], str]:
    """The answer as the chat shows it once finished (every PII span masked) and the safety guard's
    flags of it, as a Markdown line ("" when nothing is flagged or the guard is unavailable)."""
    try:
        report = live.guard_report(answer)
    except UserError as exc:    # the guard's model is missing on this server: the answer still shows
        log.warning("chat: the safety guard is unavailable: %s", exc)
        return {"role": "assistant", "content": answer}, ""
    content = {"role": "assistant", "content": report["shown_text"]}
    if not report["flagged"]:
        return content, ""
    masked = " Personal data in it is masked." if report["pii"] else ""
    return content, f"⚠️ **The safety guard flags this answer:** {'; '.join(report['reasons'])}.{masked}"


def stats_line(record: Any, engine: str, stats: dict, stopped: bool = False) -> str:
    """The line under an answer: who answered, how many tokens, how fast."""
    tokens, seconds, ttft = stats.get("new_tokens", 0), stats.get("seconds", 0.0), stats.get("ttft_s")
    first = f", first token after {1000 * ttft:,.0f} ms" if ttft is not None else ""
    end = " (stopped)" if stopped else ""
    return (f"Answered by **{record.name}** (`{record.id}`) on engine `{engine}`: {tokens} tokens in "
            f"{seconds:.2f} s, {stats.get('tokens_per_s', 0.0):.1f} tokens/s{first}{end}.")


class ChatHandlers:
    """The tab's event functions over one app context (cache, store, limits)."""

    def __init__(self, ctx: Any) -> None:
        self.cache = ctx.cache
        self.store = ctx.store
        self.max_chars = ctx.config.max_text_chars
        self._examples: dict[str, list[str]] = {}

    def check(self, variant_id: str | None, message: str | None, engine: str | None) -> None:
        """The fast check before streaming (no model loads): a message, a known variant and engine."""
        try:
            live.check_text(message, self.max_chars)
        except live.Refused as exc:
            raise gr.Error(str(exc)) from None
        self.cache.resolve(variant_id, engine)

    def respond(self, variant_id: str | None, message: str | None, history: Any, engine: str | None,
                max_new_tokens: Any = DEFAULT_NEW_TOKENS, sample: bool = False, temperature: Any = 0.7,
                top_p: Any = 0.9, seed: Any = 0) -> Iterator[tuple[list, str, str]]:
        """/chat: the history with the new turn, the answer growing as it streams, then the stats line."""
        try:
            live.check_text(message, self.max_chars)
            messages = history_messages(history) + [{"role": "user", "content": message}]
            n = check_settings(max_new_tokens, bool(sample), temperature, top_p)
        except live.Refused as exc:
            raise gr.Error(str(exc)) from None
        record, predictor = self._predictor(variant_id, engine)
        if not callable(getattr(predictor, "stream", None)):
            raise gr.Error(f"Variant {record.name} is a {record.task} model: pick it on the Demo tab.")
        key = self.cache.resolve(record.id, engine)[1]
        served = predictor.engine if key[1] == TORCH_MODEL else key[1]   # an engine by its id
        shown = list(messages) + [{"role": "assistant", "content": ""}]
        yield shown, "", f"Generating on engine `{served}` …"
        answer, finished = "", False
        try:
            stream = predictor.stream(messages, n, do_sample=bool(sample), temperature=float(temperature),
                                      top_p=float(top_p), seed=int(seed or 0))
            for piece in stream:
                answer += piece
                shown[-1] = {"role": "assistant", "content": answer}
                yield shown, "", f"Generating on engine `{served}` …"
            finished = True
        except UserError as exc:
            log.warning("chat: %s / %s: %s", record.id, served, exc)
            raise gr.Error("The model could not answer this conversation (the server log says why).") from None
        finally:
            if not finished:
                log.info("chat: %s / %s stopped after %d characters", record.id, served, len(answer))
        stats = stats_line(record, served, predictor.last_stats)
        shown[-1], flags = guarded(answer)
        yield shown, "", f"{stats}\n\n{flags}" if flags else stats

    def _predictor(self, variant_id: str | None, engine: str | None) -> tuple[Any, Any]:
        return self.cache.get(variant_id, engine)

    def examples(self, variant_id: str | None) -> list[str]:
        """The first user turns of the variant's test prompts (a few), else generic support questions."""
        if not variant_id:
            return list(EXAMPLES)
        if variant_id not in self._examples:
            self._examples[variant_id] = _test_prompts(self.store, variant_id, self.max_chars)
        return self._examples[variant_id] or list(EXAMPLES)


def _test_prompts(store: Any, variant_id: str, max_chars: int, limit: int = 8) -> list[str]:
    from hub.registries import TASKS

    try:
        record = store.get_variant(variant_id)
        split = TASKS.get(record.task).load_eval_splits(record, ("test",))["test"]
    except (UserError, OSError, KeyError) as exc:
        log.info("chat: no test prompts for %s: %s", variant_id, exc)
        return []
    out = []
    for prompt in split.inputs:
        turns = [prompt] if isinstance(prompt, str) else [m["content"] for m in prompt if m.get("role") == "user"]
        if turns and turns[-1].strip() and len(turns[-1]) <= max_chars and turns[-1] not in out:
            out.append(turns[-1])
        if len(out) == limit:
            break
    return out


def examples_update(handlers: ChatHandlers, variant_id: str | None) -> gr.Dataset:
    samples = handlers.examples(variant_id)
    where = "the variant's test prompts" if samples != EXAMPLES else "generic support questions"
    return gr.Dataset(samples=[[s] for s in samples], label=f"Examples from {where}")


# -- layout and wiring -----------------------------------------------------------------------------
def _settings() -> dict[str, Any]:
    with gr.Accordion("Decoding", open=False):
        tokens = gr.Slider(1, MAX_NEW_TOKENS, value=DEFAULT_NEW_TOKENS, step=1, label="Max new tokens")
        sample = gr.Checkbox(value=False, label="Sample (off: greedy, as the scores were measured)")
        temperature = gr.Slider(0.05, 2.0, value=0.7, step=0.05, label="Temperature")
        top_p = gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="Top-p")
        seed = gr.Number(value=0, precision=0, label="Seed")
    return {"tokens": tokens, "sample": sample, "temperature": temperature, "top_p": top_p, "seed": seed}


def _layout(ctx: Any, handlers: ChatHandlers, choices: list, first: str | None) -> dict[str, Any]:
    store, config = ctx.store, ctx.config
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            variant = gr.Dropdown(choices=choices, value=first, label="Variant", allow_custom_value=True,
                                  info="Text-generation variants in the store.")
            engine = gr.Dropdown(choices=engine_choices(store, first), value=default_engine(store, first),
                                 label="Engine", allow_custom_value=True,
                                 info="The variant's torch model or one of its built engines.")
            settings = _settings()
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Conversation", height=420, buttons=["copy"], feedback_options=None,
                                 placeholder="Ask the model something, or click an example below.")
            message = gr.Textbox(label="Message", lines=2, max_lines=8, placeholder="Type a message and press Enter",
                                 info=f"At most {config.max_text_chars:,} characters.")
            with gr.Row():
                send = gr.Button("Send", variant="primary")
                stop = gr.Button("Stop", variant="stop")
                clear = gr.Button("Clear")
            info = gr.Markdown()
            examples = gr.Dataset(components=[message], samples=[[s] for s in handlers.examples(first)],
                                  label="Examples", samples_per_page=8)
    return {"variant": variant, "engine": engine, "chatbot": chatbot, "message": message, "send": send,
            "stop": stop, "clear": clear, "info": info, "examples": examples, **settings}


def _wire(ctx: Any, h: ChatHandlers, c: dict[str, Any]) -> None:
    store = ctx.store
    inputs = [c["variant"], c["message"], c["chatbot"], c["engine"], c["tokens"], c["sample"], c["temperature"],
              c["top_p"], c["seed"]]
    checked = gr.on([c["send"].click, c["message"].submit], h.check, inputs=[c["variant"], c["message"], c["engine"]],
                    api_visibility="private")
    answer = checked.success(h.respond, inputs=inputs, outputs=[c["chatbot"], c["message"], c["info"]],
                             api_name="chat", concurrency_limit=1)
    c["stop"].click(lambda: "Stopped.", outputs=c["info"], cancels=[answer], api_visibility="private")
    c["clear"].click(lambda: ([], "", ""), outputs=[c["chatbot"], c["message"], c["info"]],
                     api_visibility="private")
    c["examples"].click(lambda sample: sample[0], inputs=c["examples"], outputs=c["message"],
                        api_visibility="private")
    c["variant"].change(lambda v: (gr.Dropdown(choices=engine_choices(store, v), value=default_engine(store, v)),
                                   examples_update(h, v), [], ""),
                        inputs=c["variant"], outputs=[c["engine"], c["examples"], c["chatbot"], c["info"]],
                        api_visibility="private")


def build_chat_tab(ctx: Any) -> dict[str, Any]:
    """Lay the tab out and wire its events (``/chat``)."""
    store, config = ctx.store, ctx.config
    choices, first = pick_variant(store, None, config.default_variant)
    gr.Markdown("## Chat with a model\nPick a text-generation variant and an engine, and talk to it: the answer "
                "streams in as it is generated, with the engine that wrote it and its speed.")
    notice = gr.Markdown(NO_VARIANTS, visible=not choices)
    handlers = ChatHandlers(ctx)
    c = _layout(ctx, handlers, choices, first)
    _wire(ctx, handlers, c)

    def reload(current: str | None) -> tuple:
        choices, value = pick_variant(store, current, config.default_variant)
        return gr.Markdown(visible=not choices), gr.Dropdown(choices=choices, value=value)

    return {**c, "notice": notice, "handlers": handlers,
            "reload": [(reload, c["variant"], [notice, c["variant"]])]}


__all__ = ["CHAT_TAB", "TAB_ID", "TAB_LABEL", "TORCH_MODEL", "build_chat_tab", "ChatHandlers", "history_messages"]
