"""Exact match: the share of predictions equal to their reference after optional normalisation.

A local `evaluate` module (layout of evaluate's `metrics/exact_match`), so it loads offline
from this folder. Hand-written: the comparison is plain string equality and no library
offers this exact set of normalisations. Unlike evaluate's module the result is in [0, 1]
(evaluate's is a percentage), and whitespace is stripped and collapsed by default because
generated answers often differ from the reference only by a trailing newline.
"""

import re
import string

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Exact match is mean(normalise(prediction) == normalise(reference)). Normalisation runs in
this order: lowercase (ignore_case), remove ASCII punctuation (ignore_punctuation),
collapse runs of whitespace to one space (collapse_whitespace), strip the ends (strip).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated texts.
    references (`list` of `str`): one reference text per prediction.
    strip (`bool`): strip leading and trailing whitespace. Defaults to True.
    collapse_whitespace (`bool`): turn every run of whitespace into one space. Defaults to True.
    ignore_case (`bool`): lowercase both texts. Defaults to False.
    ignore_punctuation (`bool`): remove `string.punctuation` characters. Defaults to False.
    use_aggregator (`bool`): if True (default) return the mean, else the per-example 0/1 list.
Returns:
    exact_match (`float` in [0, 1], or a list of 0.0/1.0); higher is better.
Examples:
    >>> from evaluators.metrics import load_metric
    >>> load_metric("exact_match").compute(predictions=["Paris.\\n", "Rome"], references=["Paris.", "Milan"])
    {'exact_match': 0.5}
"""

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_WHITESPACE = re.compile(r"\s+")


def _normalise(text, strip, collapse_whitespace, ignore_case, ignore_punctuation):
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_PUNCTUATION)
    if collapse_whitespace:
        text = _WHITESPACE.sub(" ", text)
    if strip:
        text = text.strip()
    return text


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=[],
        )

    def _compute(self, predictions, references, strip=True, collapse_whitespace=True, ignore_case=False,
                 ignore_punctuation=False, use_aggregator=True):
        flags = (strip, collapse_whitespace, ignore_case, ignore_punctuation)
        matches = [float(_normalise(p, *flags) == _normalise(r, *flags)) for p, r in zip(predictions, references)]
        if not use_aggregator:
            return {"exact_match": matches}
        return {"exact_match": float(np.mean(matches)) if matches else float("nan")}
