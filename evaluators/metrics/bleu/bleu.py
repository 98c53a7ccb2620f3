"""BLEU: corpus n-gram precision with a brevity penalty, as sacrebleu computes it.

A local `evaluate` module (layout of evaluate's `metrics/sacrebleu`), so it loads offline
from this folder. The computation is sacrebleu's `BLEU.corpus_score` with one reference
per prediction. The score and precisions are reported in [0, 1] (sacrebleu's numbers
divided by 100) to share the leaderboard's scale.
"""

import datasets
import evaluate
from sacrebleu.metrics import BLEU

_DESCRIPTION = """
BLEU is the geometric mean of the modified 1..4-gram precisions pooled over the corpus,
times a brevity penalty exp(1 - ref_len / sys_len) when the output is shorter than the
references. Texts are tokenized by sacrebleu (`13a` by default).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated texts.
    references (`list` of `str`): one reference text per prediction.
    tokenize (`str`): sacrebleu tokenizer name. Defaults to "13a".
    lowercase (`bool`): case-insensitive matching. Defaults to False.
    smooth_method (`str`): "exp" (default), "floor", "add-k" or "none".
    smooth_value (`float`): value for floor / add-k. Defaults to sacrebleu's.
Returns:
    bleu (`float`): corpus BLEU in [0, 1] (sacrebleu's score / 100); higher is better.
    precisions (`list` of `float`): the n-gram precisions in [0, 1].
    brevity_penalty, length_ratio (`float`), translation_length, reference_length (`int`).
Examples:
    >>> from evaluators.metrics import load_metric
    >>> round(load_metric("bleu").compute(predictions=["the cat sat on the mat"],
    ...                                   references=["the cat sat on the mat"])["bleu"], 6)
    1.0
"""

_CITATION = """
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores", author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation", year = "2018",
    pages = "186--191"
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bleu(evaluate.Metric):
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

    def _compute(self, predictions, references, tokenize="13a", lowercase=False, smooth_method="exp",
                 smooth_value=None):
        if not predictions:
            raise ValueError("bleu: no examples to score")
        metric = BLEU(tokenize=tokenize, lowercase=lowercase, smooth_method=smooth_method,
                      smooth_value=smooth_value)
        score = metric.corpus_score(list(predictions), [list(references)])
        return {
            "bleu": score.score / 100.0,
            "precisions": [p / 100.0 for p in score.precisions],
            "brevity_penalty": float(score.bp),
            "length_ratio": float(score.sys_len / score.ref_len) if score.ref_len else 0.0,
            "translation_length": int(score.sys_len),
            "reference_length": int(score.ref_len),
        }
