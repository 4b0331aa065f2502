"""The prediction API: FastAPI over onnxruntime, hot-reloading the champion model."""
