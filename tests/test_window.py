"""The part of a text the model reads."""

from __future__ import annotations

from evaluators.window import visible_texts


def test_long_texts_are_cut_after_the_last_whole_word_in_the_window(tiny):
    _, tokenizer = tiny
    long_text = "the  match\\twent on " * 20
    (cut,) = visible_texts([long_text], tokenizer, 12)
    assert long_text.startswith(cut) and cut == cut.rstrip() and not long_text[len(cut)].isalnum()
    assert len(tokenizer(cut)["input_ids"]) <= 12
    # one more word would not fit
    rest = long_text[len(cut):].split()
    assert len(tokenizer(cut + " " + rest[0])["input_ids"]) > 12 or len(tokenizer(cut)["input_ids"]) == 12


def test_a_word_split_by_the_window_is_dropped_whole(tiny):
    _, tokenizer = tiny
    assert len(tokenizer.tokenize("supercalifragilistic")) > 2     # many pieces: the window splits it
    text = "a " * 9 + "supercalifragilistic end"     # [CLS] + 9 words + 1 piece + [SEP] fill 12 tokens
    (cut,) = visible_texts([text], tokenizer, 12)
    assert cut == " ".join(["a"] * 9)


def test_texts_that_fit_or_no_tokenizer_are_unchanged(tiny):
    _, tokenizer = tiny
    texts = ["a short one  ", "two\nlines"]
    assert visible_texts(texts, tokenizer, 12) == texts
    assert visible_texts(["x " * 100], None, 12) == ["x " * 100]
    assert visible_texts([], tokenizer, 12) == []


def test_a_window_without_whitespace_is_cut_at_its_last_token(tiny):
    _, tokenizer = tiny
    text = "goal,match,team," * 30
    (cut,) = visible_texts([text], tokenizer, 12)
    assert cut and text.startswith(cut) and len(tokenizer(cut)["input_ids"]) <= 12
    assert tokenizer(cut)["input_ids"] == tokenizer(text, truncation=True, max_length=12)["input_ids"]


def test_a_word_read_whole_stays_when_punctuation_follows_it(tiny):
    _, tokenizer = tiny
    text = "a " * 9 + "goal, and more words after it"
    assert tokenizer.tokenize("goal") == ["goal"]
    (cut,) = visible_texts([text], tokenizer, 12)      # [CLS] + 9 words + "goal" + [SEP]: the comma is out
    assert cut == "a " * 9 + "goal"
