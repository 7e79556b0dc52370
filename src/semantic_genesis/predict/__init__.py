"""Run a fine-tuned checkpoint on new scans (``semgen predict``, docs/design.md "Predict").

    from semantic_genesis.predict import PredictConfig, predict
    result = predict("run/model.pt", ["scans/"], "out/", PredictConfig(probabilities=True))

Layout: ``config`` (PredictConfig), ``model`` (the network and input recipe from the model card),
``cases`` (files, folders, prepared cohorts), ``geometry`` (to the network's grid and back),
``segment`` (one case), ``candidates`` (classification), ``montage`` (overlay PNG), ``run``
(the loop, resume, predictions.csv).
"""

from semantic_genesis.predict.config import PredictConfig
from semantic_genesis.predict.run import PredictResult, predict

__all__ = ["PredictConfig", "PredictResult", "predict"]
