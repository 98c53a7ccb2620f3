"""chrF and chrF++: character (and word) n-gram F-score of a corpus of responses.

A local `evaluate` module (layout of evaluate's `metrics/chrf`), so it loads offline from
this folder. The computation is sacrebleu's `CHRF.corpus_score` with one reference per
prediction. Unlike evaluate's Hub module (and sacrebleu), the score is reported in [0, 1],
sacrebleu's number divided by 100, so it sits on the same scale as the other scores on
the leaderboard.
"""

import datasets
import evaluate
from sacrebleu.metrics import CHRF

_DESCRIPTION = """
chrF is the F-beta score (beta=2: recall weighs twice precision) of character n-grams
up to `char_order`, pooled over the corpus before the F-score is taken; chrF++
(`word_order=2`) adds word unigrams and bigrams.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated texts.
    references (`list` of `str`): one reference text per prediction.
    char_order (`int`): character n-gram order. Defaults to 6.
    word_order (`int`): word n-gram order; 2 gives chrF++. Defaults to 0.
    beta (`int`): recall weight. Defaults to 2.
    lowercase (`bool`): case-insensitive matching. Defaults to False.
    whitespace (`bool`): keep whitespace in character n-grams. Defaults to False.
    eps_smoothing (`bool`): chrF++.py/NLTK-style smoothing. Defaults to False (sacrebleu's default).
Returns:
    chrf (`float`): corpus chrF in [0, 1] (sacrebleu's score / 100); higher is better.
    char_order, word_order, beta: the settings used.
Examples:
    >>> from evaluators.metrics import load_metric
    >>> round(load_metric("chrf").compute(predictions=["the cat sat"], references=["the cat sat"])["chrf"], 6)
    1.0
"""

_CITATION = """
@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja", booktitle = "Proceedings of the Tenth Workshop on Statistical
    Machine Translation", year = "2015", pages = "392--395"
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Chrf(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references, char_order=CHRF.CHAR_ORDER, word_order=CHRF.WORD_ORDER,
                 beta=CHRF.BETA, lowercase=False, whitespace=False, eps_smoothing=False):
        if not predictions:
            raise ValueError("chrf: no examples to score")
        metric = CHRF(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase,
                      whitespace=whitespace, eps_smoothing=eps_smoothing)
        score = metric.corpus_score(list(predictions), [list(references)])
        return {"chrf": score.score / 100.0, "char_order": char_order, "word_order": word_order, "beta": beta}
