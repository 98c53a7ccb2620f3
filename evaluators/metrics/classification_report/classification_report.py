"""Per-class precision, recall, F1 and support, as one flat dict.

A local `evaluate` module, loaded offline from this folder. The numbers are
scikit-learn's `precision_recall_fscore_support` (what `classification_report` prints).

Output shape: flat keys `"<stat>/<class name>"` with stat in precision|recall|f1|support,
e.g. `{"precision/business": 0.91, ..., "support/tech": 80}`. `evaluate` allows any dict
from `_compute`, but a flat dict of scalars is what `evaluate.combine`, `push_to_hub` and
our long-form results table (one row per metric name) can take, so nested dicts are avoided.
"""

import datasets
import evaluate
from sklearn.metrics import precision_recall_fscore_support

_STATS = ("precision", "recall", "f1", "support")

_DESCRIPTION = """
Per-class precision (TP / (TP + FP)), recall (TP / (TP + FN)), F1 (their harmonic mean) and
support (number of true examples of the class), one entry per class and statistic.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    labels (`list` of `int`): the classes to report, in order. Defaults to the classes seen.
    target_names (`list` of `str`): a name for each entry of `labels`, used in the keys.
        Defaults to the class ids as strings.
    zero_division (`float`): value for an undefined ratio. Defaults to 0.
Returns:
    A flat dict with keys "precision/<name>", "recall/<name>", "f1/<name>" (floats in [0, 1],
    higher is better) and "support/<name>" (int counts).
Examples:
    >>> from evaluators.metrics import load_metric
    >>> report = load_metric("classification_report")
    >>> report.compute(references=[0, 1, 1], predictions=[0, 1, 0], target_names=["a", "b"])["recall/b"]
    0.5
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
class ClassificationReport(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.classification_report.html"
            ],
        )

    def _compute(self, predictions, references, labels=None, target_names=None, zero_division=0):
        if labels is None:
            labels = sorted(set(references) | set(predictions))
        if target_names is None:
            target_names = [str(label) for label in labels]
        if len(target_names) != len(labels):
            raise ValueError(f"{len(target_names)} target_names for {len(labels)} labels")
        columns = precision_recall_fscore_support(
            references, predictions, labels=labels, average=None, zero_division=zero_division
        )
        report = {}
        for stat, values in zip(_STATS, columns):
            cast = int if stat == "support" else float
            report.update({f"{stat}/{name}": cast(v) for name, v in zip(target_names, values)})
        return report
