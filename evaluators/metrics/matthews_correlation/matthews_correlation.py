"""Matthews correlation coefficient (multi-class R_K statistic).

A local `evaluate` module (layout of evaluate's `metrics/matthews_correlation`), loaded
offline from this folder. The computation is scikit-learn's `matthews_corrcoef`.
"""

import datasets
import evaluate
from sklearn.metrics import matthews_corrcoef

_DESCRIPTION = """
The Matthews correlation coefficient is the correlation between predicted and true labels,
computed from the whole confusion matrix (Gorodkin's multi-class generalisation). It is in
[-1, 1]: 1 is perfect, 0 is no better than chance, and it stays informative when classes are
imbalanced. It is 0 when the predictions (or references) are all one class.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    sample_weight (`list` of `float`): per-example weights. Defaults to None.
Returns:
    matthews_correlation (`float`): in [-1, 1]; higher is better.
Examples:
    >>> from evaluators.metrics import load_metric
    >>> load_metric("matthews_correlation").compute(references=[0, 1, 1, 0], predictions=[0, 1, 1, 0])
    {'matthews_correlation': 1.0}
"""

_CITATION = """
@article{gorodkin2004comparing,
  title={Comparing two K-category assignments by a K-category correlation coefficient},
  author={Gorodkin, Jan},
  journal={Computational Biology and Chemistry},
  volume={28}, number={5-6}, pages={367--374}, year={2004}
}
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12}, pages={2825--2830}, year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MatthewsCorrelation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.matthews_corrcoef.html"],
        )

    def _compute(self, predictions, references, sample_weight=None):
        score = matthews_corrcoef(references, predictions, sample_weight=sample_weight)
        return {"matthews_correlation": float(score)}
