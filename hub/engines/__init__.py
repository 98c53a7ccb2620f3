"""Inference engines: torch (bf16 + torch.compile), ONNX Runtime, OpenVINO and TensorRT.

Backends register here, lazily, in ``hub.registries.ENGINES``; nothing here imports a runtime.
"""

from hub.registries import ENGINES

ENGINES.register("torch", "hub.engines.torch_backend:TorchBackend")
ENGINES.register("onnxruntime", "hub.engines.ort_backend:OrtBackend")
ENGINES.register("openvino", "hub.engines.openvino_backend:OpenVinoBackend")
ENGINES.register("tensorrt", "hub.engines.tensorrt_backend:TensorRTBackend")
