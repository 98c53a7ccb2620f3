"""The project's registries, one instance per kind of plugin.

Built-in entries are registered lazily ("module:attr") so that ``import hub`` stays
cheap: torch, peft and the engine backends load only when an entry is used.
"""

from __future__ import annotations

from hub.registry import Registry

TASKS: Registry = Registry("task")
EVALUATORS: Registry = Registry("evaluator")
PEFT_METHODS: Registry = Registry("PEFT method")
ENGINES: Registry = Registry("engine backend")
SUITES: Registry = Registry("evaluation suite")

TASKS.register("text-classification", "tasks.text_classification:TASK")
EVALUATORS.register("classification", "evaluators.task_metrics:ClassificationEvaluator")

ENGINES.register("torch", "hub.engines.torch_backend:TorchBackend")
ENGINES.register("onnxruntime", "hub.engines.ort_backend:OrtBackend")
ENGINES.register("openvino", "hub.engines.openvino_backend:OpenVinoBackend")
ENGINES.register("tensorrt", "hub.engines.tensorrt_backend:TensorRTBackend")

EVALUATORS.register("fairness", "evaluators.safety:FairnessEvaluator")
EVALUATORS.register("toxicity", "evaluators.safety:ToxicityEvaluator")
EVALUATORS.register("pii", "evaluators.safety:PiiEvaluator")
EVALUATORS.register("refusal", "evaluators.safety:RefusalEvaluator")
EVALUATORS.register("robustness", "evaluators.robustness:RobustnessEvaluator")
EVALUATORS.register("explain", "evaluators.explain:ExplainEvaluator")
