"""Multi-class Brier score: mean squared distance between probabilities and the one-hot truth.

A local `evaluate` module, loaded offline from this folder. Hand-written in numpy because
scikit-learn's `brier_score_loss` takes multi-class probabilities only from version 1.7
(we support 1.5+) and evaluate's Hub `brier_score` is binary only. The definition is
Brier's original (1950) multi-class score:

    Brier = 1/n * sum_i sum_k (p_ik - [y_i == k])^2,   in [0, 2]

For two classes this is twice the usual binary Brier score 1/n * sum_i (p_i1 - y_i)^2
(what sklearn's `brier_score_loss` returns for binary input, "scaled by half").
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Multi-class Brier score (Brier, 1950): the mean over examples of the sum over classes of the
squared difference between the predicted probability and the one-hot reference. 0 is a perfect,
fully confident forecaster; 2 is the worst (all mass on one wrong class). It is a strictly
proper scoring rule. For two classes it is twice the binary Brier score.
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `int`): true class ids in [0, n_classes).
    prediction_probabilities (`list` of `list` of `float`): one probability vector per example
        (n_examples x n_classes).
Returns:
    brier_score (`float`): in [0, 2]; lower is better.
Examples:
    >>> from evaluators.metrics import load_metric
    >>> brier = load_metric("brier_score")
    >>> brier.compute(references=[0, 1], prediction_probabilities=[[1.0, 0.0], [0.5, 0.5]])
    {'brier_score': 0.25}
"""

_CITATION = """
@article{brier1950verification,
  title={Verification of Forecasts Expressed in Terms of Probability},
  author={Brier, Glenn W.},
  journal={Monthly Weather Review},
  volume={78}, number={1}, pages={1--3}, year={1950}
}
"""


def brier_score(references, probabilities):
    """Multi-class Brier score of `probabilities` (n x k) against integer `references` (n,)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    references = np.asarray(references)
    if references.min(initial=0) < 0 or references.max(initial=0) >= probabilities.shape[1]:
        raise ValueError(f"references must be class ids in [0, {probabilities.shape[1]})")
    onehot = np.eye(probabilities.shape[1])[references]
    return float(((probabilities - onehot) ** 2).sum(axis=1).mean())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BrierScore(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "references": datasets.Value("int32"),
                    "prediction_probabilities": datasets.Sequence(datasets.Value("float64")),
                }
            ),
            reference_urls=["https://doi.org/10.1175/1520-0493(1950)078<0001:VOFEIT>2.0.CO;2"],
        )

    def _compute(self, references, prediction_probabilities):
        return {"brier_score": brier_score(references, prediction_probabilities)}
