"""Inference engines: torch (bf16 + torch.compile), ONNX Runtime, OpenVINO and TensorRT.

Backends register lazily in ``hub.registries.ENGINES``; nothing here imports a runtime.
"""
