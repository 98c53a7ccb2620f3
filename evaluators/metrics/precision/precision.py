"""Precision for single-label multi-class classification.

A local `evaluate` module (layout of evaluate's `metrics/precision`), loaded offline from this
folder. The computation is scikit-learn's `precision_score`; unlike evaluate's Hub module the
default `average` is "macro" (our tasks are multi-class) and only the single-label
averages macro|micro|weighted are accepted.
"""

import datasets
import evaluate
from sklearn.metrics import precision_score

_AVERAGES = ("macro", "micro", "weighted")

_DESCRIPTION = """
Precision: the fraction of predictions of a class that are correct, TP / (TP + FP),
computed per class and then averaged:
macro = unweighted mean over classes, weighted = mean weighted by class support,
micro = computed from the pooled counts over all classes.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    average (`str`): one of "macro" (default), "micro", "weighted".
    labels (`list` of `int`): the classes to include; pass all class ids so that a class
        absent from both inputs still counts in the macro average. Defaults to the classes seen.
    zero_division (`float`): value for an undefined ratio (no predicted or no true examples
        of a class). Defaults to 0.
    sample_weight (`list` of `float`): per-example weights. Defaults to None.
Returns:
    precision (`float`): in [0, 1]; higher is better.
Examples:
    >>> from evaluators.metrics import load_metric
    >>> load_metric("precision").compute(references=[0, 1, 2, 0], predictions=[0, 1, 1, 0], average="micro")
    {'precision': 0.75}
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12}, pages={2825--2830}, year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Precision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.precision_score.html"],
        )

    def _compute(self, predictions, references, average="macro", labels=None, zero_division=0, sample_weight=None):
        if average not in _AVERAGES:
            raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
        score = precision_score(
            references,
            predictions,
            labels=labels,
            average=average,
            zero_division=zero_division,
            sample_weight=sample_weight,
        )
        return {"precision": float(score)}
