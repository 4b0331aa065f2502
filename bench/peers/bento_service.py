"""BentoML's documented service for a scikit-learn model, as its guides write it.

The forest is saved to BentoML's model store first (`save`, run by bench/peer_servers.py
with BentoML's own interpreter); `bentoml serve bento_service:IrisClassifier` then
serves it with one worker. One JSON row in, the class probabilities out.
"""

import sys

import bentoml
import numpy as np

MODEL_TAG = "iris_clf:latest"


@bentoml.service(workers=1)
class IrisClassifier:
    bento_model = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(self.bento_model)

    @bentoml.api
    def classify(self, input_series: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(input_series)


def save(pickled: str) -> None:
    import pickle
    from pathlib import Path

    bentoml.sklearn.save_model("iris_clf", pickle.loads(Path(pickled).read_bytes()))


if __name__ == "__main__":
    save(sys.argv[1])
