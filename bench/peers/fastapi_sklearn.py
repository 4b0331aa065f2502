"""What most tutorials ship: FastAPI, a pydantic body, scikit-learn called per request.

Served by `uvicorn bench.peers.fastapi_sklearn:app` with uvicorn's defaults, one
worker. The forest is the benchmark's registered model, pickled by bench/peer_servers.py.
"""

import os
import pickle
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

model = pickle.loads(Path(os.environ["PEER_MODEL"]).read_bytes())

app = FastAPI()


class Features(BaseModel):
    features: list[float]


@app.post("/predict")
def predict(body: Features) -> dict[str, Any]:
    probabilities = model.predict_proba([body.features])[0]
    return {"prediction": int(probabilities.argmax()), "probabilities": probabilities.tolist()}
