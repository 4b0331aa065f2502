"""The prediction API: FastAPI over the forest evaluator (or onnxruntime), hot-reloading."""
