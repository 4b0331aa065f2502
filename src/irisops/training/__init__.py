"""Training: the code that needs the `train` extra (scikit-learn, pandas, the full MLflow).

The API never imports this package, so the serving image can leave those dependencies
out; the modules beside it (bundle, runtime, registry, tracking, config) are shared.
"""
