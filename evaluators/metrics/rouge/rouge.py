"""ROUGE: n-gram and longest-common-subsequence overlap between a response and its reference.

A local `evaluate` module (layout of evaluate's `metrics/rouge`), so it loads offline from
this folder; evaluate's own `rouge` lives on the Hub. The computation is rouge-score's
`RougeScorer`. Unlike evaluate's Hub module, the aggregate is the plain mean of the
per-example F-measures (evaluate's `BootstrapAggregator` reports the median of bootstrap
means, which differs a little and is not seeded); `use_aggregator=False` gives the lists.
"""

import datasets
import evaluate
import numpy as np
from rouge_score import rouge_scorer

_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

_DESCRIPTION = """
ROUGE-N is the F-measure of the n-grams a prediction shares with its reference;
ROUGE-L that of their longest common subsequence; ROUGE-Lsum splits both texts into
lines at newlines and takes the union of the line-level LCS matches.
rouge-score's default tokenizer lowercases and keeps only runs of [a-z0-9].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated texts.
    references (`list` of `str`): one reference text per prediction.
    rouge_types (`list` of `str`): any of "rouge1", "rouge2", "rougeL", "rougeLsum" (default all).
    use_stemmer (`bool`): Porter-stem tokens before matching. Defaults to False.
    use_aggregator (`bool`): if True (default) return the mean F-measure of each type,
        else the per-example F-measures as lists.
Returns:
    one key per rouge type: F-measure in [0, 1] (a float, or a list of floats); higher is better.
    An empty prediction or reference scores 0.
Examples:
    >>> from evaluators.metrics import load_metric
    >>> load_metric("rouge").compute(predictions=["the cat sat"], references=["the cat sat down"],
    ...                              rouge_types=["rouge1"])
    {'rouge1': 0.8571428571428571}
"""

_CITATION = """
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew", booktitle = "Text Summarization Branches Out", year = "2004",
    pages = "74--81"
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references, rouge_types=None, use_stemmer=False, use_aggregator=True):
        rouge_types = list(_ROUGE_TYPES if rouge_types is None else rouge_types)
        unknown = [t for t in rouge_types if t not in _ROUGE_TYPES]
        if unknown or not rouge_types:
            raise ValueError(f"rouge_types must be among {', '.join(_ROUGE_TYPES)}, got {rouge_types}")
        scorer = rouge_scorer.RougeScorer(rouge_types, use_stemmer=use_stemmer)
        per_example = {t: [] for t in rouge_types}
        for prediction, reference in zip(predictions, references):
            scores = scorer.score(reference, prediction)   # rouge-score's order is (target, prediction)
            for t in rouge_types:
                per_example[t].append(float(scores[t].fmeasure))
        if not use_aggregator:
            return per_example
        return {t: float(np.mean(v)) if v else float("nan") for t, v in per_example.items()}
