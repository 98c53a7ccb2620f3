"""The Chat tab (the text-generation demo widget) and the app over a store holding both tasks.

The store holds a tiny random chat LM fine-tuned for a few steps (full fine-tuning, so a torch
bf16 engine can be built from it) beside the tiny classification variant of ``test_ui``; the
app is launched on a free port and driven with gradio_client, as a client would.
"""

from __future__ import annotations

import pytest

from hub.store import Store
from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture
from tests.test_task_contract import chat_jsonl
from tests.test_ui import VARIANT_ID as CLS_VARIANT, add_tiny_variant, free_port


def quiet(*_args, **_kwargs) -> None:
    pass


@pytest.fixture(scope="module")
def chat_store(tiny_llama_dir, tiny_model_dir, tmp_path_factory):
    from evaluators.runner import run_suite
    from hub.engines.build import build_engine
    from hub.registries import TASKS
    from hub.run_config import parse_run_config

    root = tmp_path_factory.mktemp("chat")
    store = Store(root / "home")
    add_tiny_variant(store, tiny_model_dir)
    cfg = parse_run_config({"task": "text-generation", "name": "tiny-support", "seed": 3,
                            "model": {"name": str(tiny_llama_dir), "max_length": 64},
                            "data": {"source": str(chat_jsonl(root / "chat.jsonl"))},
                            "peft": {"method": "none"},
                            "train": {"learning_rate": 3e-3, "batch_size": 4, "max_steps": 30, "warmup_ratio": 0.0},
                            "eval": {"bootstrap": 10}, "tracking": {"report_to": []}})
    task = TASKS.get("text-generation")
    variant = task.train(cfg, store, data=task.check(cfg), show_progress=False)
    run_suite(store, variant, "generation", bootstrap=10, log=quiet, progress=False)
    engine = build_engine(store, variant, "torch", "bf16", log=quiet, budget_s=0.05)
    return store, variant, engine


@pytest.fixture(scope="module")
def app(chat_store):
    from gradio_client import Client

    from hub.ui.app import launch

    store = chat_store[0]
    port = free_port()
    demo = launch(store, port=port, prevent_thread_lock=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False), demo
    finally:
        demo.close()


def reference(store: Store, variant: str, messages: list[dict], n: int, engine: str | None = None,
              **sampling) -> str:
    """The torch model's (or ``engine``'s) own answer, as the chatbot shows text (gradio cleans
    its indentation)."""
    import inspect

    from hub.engines.build import load_engine_predictor
    from hub.registries import TASKS

    record = store.get_variant(variant)
    predictor = load_engine_predictor(store, store.get_engine(engine)) if engine else \
        TASKS.get(record.task).load_predictor(store, record)
    return inspect.cleandoc(predictor.generate([messages], n, **sampling)[0])


def text_of(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def test_chat_streams_the_greedy_answer_and_says_who_answered(app, chat_store):
    client, _ = app
    store, variant, _ = chat_store
    question = "My printer is not printing, what do I do?"
    history, box, info = client.predict(variant, question, [], "torch", 12, False, 0.7, 0.9, 0, api_name="/chat")
    assert box == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert text_of(history[0]) == question
    answer = text_of(history[1])
    assert answer.strip() and answer == reference(store, variant, [{"role": "user", "content": question}], 12)
    assert "tiny-support" in info and "`torch-fp32`" in info and "tokens/s" in info

    # the second turn sees the first: its answer is the model's answer to the whole conversation
    follow = "And if it still does not print?"
    history2, _, _ = client.predict(variant, follow, history, "torch", 8, False, 0.7, 0.9, 0, api_name="/chat")
    convo = [{"role": m["role"], "content": text_of(m)} for m in history] + [{"role": "user", "content": follow}]
    assert len(history2) == 4 and text_of(history2[-1]) == reference(store, variant, convo, 8)


def test_chat_streams_piece_by_piece(app, chat_store):
    client, _ = app
    _, variant, _ = chat_store
    job = client.submit(variant, "hello how can I help", [], "torch", 16, False, 0.7, 0.9, 0, api_name="/chat")
    outputs = list(job)   # every streamed update, the final one last
    assert len(outputs) >= 3   # the empty turn, at least one piece, the stats line
    answers = [text_of(out[0][-1]) for out in outputs]
    assert answers[0] == "" and all(b.startswith(a) for a, b in zip(answers, answers[1:]))
    assert "Generating" in outputs[0][2] and "tokens/s" in outputs[-1][2]


def test_chat_on_an_engine_names_it(app, chat_store):
    client, _ = app
    store, variant, engine = chat_store
    messages = [{"role": "user", "content": "reset password"}]
    history, _, info = client.predict(variant, "reset password", [], engine, 6, False, 0.7, 0.9, 0,
                                      api_name="/chat")
    assert f"on engine `{engine}`" in info and engine.startswith("torch-bf16-")
    assert text_of(history[-1]) == reference(store, variant, messages, 6, engine=engine)


def test_seeded_sampling_repeats(app, chat_store):
    client, _ = app
    _, variant, _ = chat_store
    runs = [client.predict(variant, "sound volume", [], "torch", 10, True, 1.0, 0.95, 5, api_name="/chat")[0]
            for _ in range(2)]
    assert text_of(runs[0][-1]) == text_of(runs[1][-1]) == reference(
        chat_store[0], variant, [{"role": "user", "content": "sound volume"}], 10, do_sample=True, temperature=1.0,
        top_p=0.95, seed=5)


@pytest.mark.parametrize("args, says", [
    (("", [], "torch", 8), "empty"),
    (("x" * 10_001, [], "torch", 8), "at most"),
    (("hello", [], "torch", 0), "minimum value 1"),          # gradio's own check of the slider's range
    (("hello", [], "torch", 100_000), "maximum value 512"),
    (("hello", [], "no-such-engine", 8), "Unknown engine"),
])
def test_bad_chat_requests_are_one_sentence(app, chat_store, args, says):
    client, _ = app
    _, variant, _ = chat_store
    message, history, engine, n = args
    with pytest.raises(Exception) as err:
        client.predict(variant, message, history, engine, n, False, 0.7, 0.9, 0, api_name="/chat")
    assert says in str(err.value)


def test_a_malformed_history_is_refused_and_the_app_goes_on(app, chat_store):
    client, _ = app
    _, variant, _ = chat_store
    with pytest.raises(Exception):   # gradio's Chatbot refuses the role before the tab sees it
        client.predict(variant, "hello", [{"role": "robot", "content": "hi"}], "torch", 4, False, 0.7, 0.9, 0,
                       api_name="/chat")
    history, _, info = client.predict(variant, "hello", [], "torch", 4, False, 0.7, 0.9, 0, api_name="/chat")
    assert len(history) == 2 and "tokens/s" in info


def test_a_classifier_on_the_chat_endpoint_is_refused(app):
    client, _ = app
    with pytest.raises(Exception) as err:
        client.predict(CLS_VARIANT, "hello", [], "torch", 8, False, 0.7, 0.9, 0, api_name="/chat")
    assert "Demo tab" in str(err.value)


def test_each_task_gets_its_own_demo_widget(app, chat_store):
    from hub.ui import chat_tab, demo_tab
    from hub.ui.app import demo_widgets

    store, variant, _ = chat_store
    widgets = {w.tab_id: w for w in demo_widgets()}
    assert set(widgets) == {"demo", "chat"}
    assert widgets["chat"].tasks == {"text-generation"} and widgets["demo"].tasks == {"text-classification"}
    assert [v for _, v in chat_tab.variant_choices(store)] == [variant]
    assert [v for _, v in demo_tab.variant_choices(store)] == [CLS_VARIANT]
    # examples are the variant's own test prompts
    examples = chat_tab._test_prompts(store, variant, 10_000)
    assert examples and all("does not work" in e for e in examples)


def test_chat_widget_is_hidden_without_generation_variants(tiny_model_dir, tmp_path):
    from hub.ui.app import demo_widgets

    store = Store(tmp_path / "home")
    shown = {w.tab_id: w.shown(store, i == 0) for i, w in enumerate(demo_widgets())}
    assert shown == {"demo": True, "chat": False}       # an empty store: the first demo and its notice
    add_tiny_variant(store, tiny_model_dir)
    shown = {w.tab_id: w.shown(store, i == 0) for i, w in enumerate(demo_widgets())}
    assert shown == {"demo": True, "chat": False}


def test_history_messages_flattens_gradio_content():
    from hub.ui.chat_tab import history_messages
    from hub.ui.live import Refused

    got = history_messages([{"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text",
                                                                                          "text": "there"}]},
                            {"role": "assistant", "content": "hello", "metadata": None}])
    assert got == [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello"}]
    for bad in ([{"role": "user"}], ["text"], [{"role": "tool", "content": "x"}]):
        with pytest.raises(Refused):
            history_messages(bad)


def test_leaderboard_says_when_it_mixes_tasks(chat_store):
    from hub.ui import columns
    from hub.ui.leaderboard import store_rows

    store = chat_store[0]
    rows = store_rows(store)
    assert {r["task"] for r in rows} == {"text-classification", "text-generation"}
    assert "mixes 2 tasks" in columns.mixed_tasks(rows)
    generation = columns.view(rows, filters={"task": ["text-generation"]})
    assert "rougeL" in generation.columns and "accuracy" not in generation.columns
    assert columns.mixed_tasks(columns.filter_rows(rows, {"task": ["text-generation"]})) == ""
    classification = columns.view(rows, filters={"task": ["text-classification"]})
    assert "accuracy" in classification.columns and "rougeL" not in classification.columns


def test_model_card_of_a_generation_variant(chat_store):
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from hub.card import build_card
    from tests.test_card import front_matter

    store, variant, engine = chat_store
    card = build_card(store, variant, repo_id="team/tiny-support")
    meta = front_matter(card.text)
    assert meta["pipeline_tag"] == "text-generation" and meta["library_name"] == "transformers"
    _, results = model_index_to_eval_results(meta["model-index"])
    assert {r.task_type for r in results} == {"text-generation"}
    assert {r.task_name for r in results} == {"Text Generation"}
    torch_row = next(r for r in store.leaderboard() if r["variant"] == variant and r["engine"] == "torch-fp32")
    carded = [r.metric_value for r in results if r.metric_type == "rougeL"]
    assert pytest.approx(torch_row["rougeL"], abs=1e-4) in carded
    assert "AutoModelForCausalLM.from_pretrained(\"team/tiny-support\")" in card.text
    assert "apply_chat_template" in card.text and "Labels:" not in card.text
    assert "evalhub pull" not in card.text and "tensorrt" not in card.text.split("## How to use")[1].lower()


def test_the_guard_checks_every_answer_and_masks_pii(app, chat_store, monkeypatch):
    from hub.ui import chat_tab, live

    assert chat_tab.guarded("Restart the router and check the cable.") == (
        {"role": "assistant", "content": "Restart the router and check the cable."}, "")
    content, flags = chat_tab.guarded("Write to jane.doe@example.com or call +44 20 7946 0958 for help.")
    assert "jane.doe@example.com" not in content["content"] and "flags this answer" in flags and "masked" in flags
    assert content["content"] == live.guard_report("Write to jane.doe@example.com or call +44 20 7946 0958 "
                                                   "for help.")["shown_text"]
    # through the endpoint: a scripted model that answers with an e-mail address
    client, _ = app
    _, variant, _ = chat_store

    class Leaky:
        engine, last_stats = "scripted", {"new_tokens": 3, "seconds": 0.1, "tokens_per_s": 30.0, "ttft_s": 0.01}

        def stream(self, *_args, **_kwargs):
            yield from ["Mail ", "bob@example.org ", "today."]

    monkeypatch.setattr(chat_tab.ChatHandlers, "_predictor", lambda self, v, e: (self.store.get_variant(v), Leaky()))
    history, _, info = client.predict(variant, "who do I mail?", [], "torch", 8, False, 0.7, 0.9, 0, api_name="/chat")
    assert "bob@example.org" not in text_of(history[-1]) and "flags this answer" in info
