"""Expected calibration error (top-label ECE with equal-width confidence bins).

A local `evaluate` module, loaded offline from this folder. Hand-written in numpy because
neither scikit-learn nor the `evaluate` Hub has an ECE (sklearn only offers the binary
`calibration_curve`). Definition as in Guo et al. (2017), "On Calibration of Modern Neural
Networks": confidence = max class probability, prediction = its argmax, bins
(0, 1/M], (1/M, 2/M], ..., ((M-1)/M, 1] and

    ECE = sum_m |B_m| / n * |accuracy(B_m) - mean confidence(B_m)|
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Expected calibration error: the support-weighted mean, over equal-width bins of the top-label
confidence, of the gap between the accuracy and the mean confidence of the examples in the bin.
0 is perfectly calibrated; 1 is the worst. Empty bins contribute nothing.
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `int`): true class ids.
    prediction_probabilities (`list` of `list` of `float`): one probability vector per example
        (n_examples x n_classes, rows summing to 1); the prediction is the argmax of each row.
    n_bins (`int`): number of equal-width confidence bins on [0, 1]. Defaults to 15.
Returns:
    expected_calibration_error (`float`): in [0, 1]; lower is better.
Examples:
    >>> from evaluators.metrics import load_metric
    >>> ece = load_metric("expected_calibration_error")
    >>> ece.compute(references=[0, 1], prediction_probabilities=[[1.0, 0.0], [0.75, 0.25]], n_bins=4)
    {'expected_calibration_error': 0.375}
"""

_CITATION = """
@inproceedings{guo2017calibration,
  title={On Calibration of Modern Neural Networks},
  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},
  booktitle={Proceedings of the 34th International Conference on Machine Learning},
  pages={1321--1330}, year={2017}
}
@inproceedings{naeini2015obtaining,
  title={Obtaining Well Calibrated Probabilities Using Bayesian Binning},
  author={Naeini, Mahdi Pakdaman and Cooper, Gregory and Hauskrecht, Milos},
  booktitle={Proceedings of the AAAI Conference on Artificial Intelligence},
  year={2015}
}
"""


def expected_calibration_error(references, probabilities, n_bins=15):
    """Top-label ECE of `probabilities` (n x k) against integer `references` (n,)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    references = np.asarray(references)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == references).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left" puts a confidence equal to an edge in the bin that edge closes: (lo, hi].
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    # |sum(correct - conf)| / n per bin == |B_m| / n * |acc(B_m) - conf(B_m)|
    return float(np.abs(gap[count > 0]).sum() / len(references))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ExpectedCalibrationError(evaluate.Metric):
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
            reference_urls=["https://arxiv.org/abs/1706.04599"],
        )

    def _compute(self, references, prediction_probabilities, n_bins=15):
        if n_bins < 1:
            raise ValueError(f"n_bins must be at least 1, got {n_bins}")
        score = expected_calibration_error(references, prediction_probabilities, n_bins)
        return {"expected_calibration_error": score}
