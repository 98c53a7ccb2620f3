"""WordNet synonyms that keep the part of speech, from Debian's `wordnet-base` through NLTK.

These machines reach no download server, so the data comes from the Debian package
(`apt-get install --no-install-recommends wordnet-base`), which puts WordNet 3.0 flat in
``/usr/share/wordnet``. NLTK's reader cannot use that folder as it is: it needs a
``lexnames`` file the package does not ship, and NLTK >= 3.9 refuses paths outside its data
roots and symlinked data. So, hand-written here, on first use the files are *copied* (not
linked) into a folder the project manages, ``lexnames`` is written from the lexnames(5WN)
table below, and that folder is added to ``nltk.data.path``:

    $EVALHUB_NLTK_DATA, else $XDG_CACHE_HOME/evalhub/nltk_data, else ~/.cache/evalhub/nltk_data
        corpora/wordnet/   data.*, index.*, *.exc, cntlist.rev, lexnames

``$WNSEARCHDIR`` (WordNet's own variable) may name another WordNet 3.0 dict folder to copy
from. Missing data is a :class:`UserError` that gives the apt command.

Part of speech: the perturbations and the attack pass the POS the word has in its sentence
(tagged in ``constraints.py``); without one, a word is given the part of speech it most
often has in WordNet (per POS, the tagged-sense counts in ``cntlist.rev`` of the base form WordNet's morphology finds in that POS), and only lemmas
of synsets of that POS are offered. A word keeps its form: it is substituted only where
WordNet lists it as it is, or as a regular noun plural ("said" is mostly the verb "say",
so it gets no synonym rather than one in the wrong tense).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from hub.errors import UserError

from .lexicon import STOPWORDS

SYSTEM_DIR = Path("/usr/share/wordnet")   # where Debian's wordnet-base puts the files
INSTALL_HINT = ("install it with `apt-get install --no-install-recommends wordnet-base` "
                "(or set WNSEARCHDIR to a WordNet 3.0 dict folder)")
REQUIRED = tuple(f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")) \
    + tuple(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")) + ("cntlist.rev",)

# lexnames(5WN): file number, lexicographer file name; the third column (1 noun, 2 verb,
# 3 adjective, 4 adverb) follows from the name's prefix.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
POS_ORDER = ("n", "v", "a", "r")
SENSES = 4   # synonyms come from the first senses only: rarer senses drift in meaning


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` for the 45 lexicographer files."""
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def data_home() -> Path:
    """The NLTK data root the project manages (see the module docstring)."""
    if os.environ.get("EVALHUB_NLTK_DATA"):
        return Path(os.environ["EVALHUB_NLTK_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "evalhub" / "nltk_data"


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED)


def _source_dir() -> Path | None:
    candidates = [Path(os.environ["WNSEARCHDIR"])] if os.environ.get("WNSEARCHDIR") else []
    return next((c for c in candidates + [SYSTEM_DIR] if _complete(c)), None)


def install_wordnet() -> Path:
    """The managed WordNet folder, copied from the system data (and given ``lexnames``) on first use."""
    target = data_home() / "corpora" / "wordnet"
    if _complete(target) and (target / "lexnames").is_file():
        return target
    source = _source_dir()
    if source is None:
        raise UserError(f"WordNet data not found in {SYSTEM_DIR}: synonym perturbations and the "
                        f"attack need WordNet 3.0; {INSTALL_HINT}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".wordnet-"))
    try:
        for name in REQUIRED:  # copies, not links: NLTK refuses symlinked data
            shutil.copyfile(source / name, staging / name)
        lexnames = source / "lexnames"
        (staging / "lexnames").write_text(lexnames.read_text() if lexnames.is_file() else lexnames_text())
        if target.exists():  # an incomplete copy from an interrupted run
            shutil.rmtree(target)
        os.replace(staging, target)
    except OSError as exc:
        if not (_complete(target) and (target / "lexnames").is_file()):  # else another process won
            raise UserError(f"cannot set up WordNet in {target} ({exc}); set EVALHUB_NLTK_DATA to "
                            "a writable folder") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _open_reader(folder: Path) -> Any:
    """NLTK's reader on ``folder``, without the multilingual (OMW) mapping.

    The reader maps its synsets onto the "wordnet" corpus for OMW through ``index.sense``,
    a file that is in the separate `wordnet-sense-index` package; synonyms need neither.
    """
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class Reader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            return None

    root = str(folder.parent.parent)
    if root not in nltk.data.path:  # NLTK only opens files under its data roots
        nltk.data.path.append(root)
    with warnings.catch_warnings():  # "multilingual functions are not available": by design
        warnings.simplefilter("ignore", UserWarning)
        return Reader(str(folder), None)


def _sense_counts(path: Path) -> dict[tuple[str, str], int]:
    """Tagged-sense counts summed per (lemma, POS), read once from ``cntlist.rev``.

    Lines are ``lemma%ss_type:lex_filenum:lex_id:head:head_id sense_number count``; one pass
    here replaces a binary search of the file per sense through NLTK's ``Lemma.count()``.
    """
    pos_of = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}   # 5: adjective satellite
    counts: dict[tuple[str, str], int] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) == 3 and "%" in fields[0]:
            lemma, rest = fields[0].split("%", 1)
            key = (lemma, pos_of.get(rest[:1], "?"))
            counts[key] = counts.get(key, 0) + int(fields[2])
    return counts


class WordNet:
    """Synonym lookups on one NLTK reader, cached per word."""

    def __init__(self, folder: Path) -> None:
        self.reader: Any = _open_reader(folder)
        self._counts = _sense_counts(folder / "cntlist.rev")
        self._forms: dict[str, tuple[str, str] | None] = {}
        self._synonyms: dict[tuple[str, str | None], list[str]] = {}

    def _senses(self, base: str, pos: str) -> list[Any]:
        """The lemmas named ``base`` in synsets of ``pos``, most frequent sense first."""
        return [lemma for synset in self.reader.synsets(base, pos) for lemma in synset.lemmas()
                if lemma.name().lower() == base]

    def main_form(self, word: str) -> tuple[str, str] | None:
        """(POS, base form) of the word's most frequent reading in WordNet, or None.

        Each POS scores the tagged-sense count of the word's base form in that POS ("said"
        is an adjective, but far more often a form of the verb "say"); ties, mostly words
        no sense of which was counted, go to the first of noun, verb, adjective, adverb.
        """
        word = word.lower()
        if word not in self._forms:
            best, best_count = None, -1
            for pos in POS_ORDER:
                base = self.reader.morphy(word, pos)
                if base and self._counts.get((base, pos), 0) > best_count:
                    best, best_count = (pos, base), self._counts.get((base, pos), 0)
            self._forms[word] = best
        return self._forms[word]

    def main_pos(self, word: str) -> str | None:
        """The WordNet POS (n, v, a, r) the word most often has, or None when WordNet lacks it."""
        form = self.main_form(word)
        return form[0] if form else None

    def synonyms(self, word: str, pos: str | None = None) -> list[str]:
        """Single-word synonyms from the word's first senses in ``pos`` (default: its main
        POS), most frequent first.

        Only words WordNet lists as they are, or regular noun plurals ("prices" gives
        "costs"), get synonyms: other inflections cannot be carried over to a synonym.
        ``pos`` is the POS the word has in its sentence (see ``constraints.py``).
        """
        key = word.lower()
        if (key, pos) not in self._synonyms:
            form = None if key in STOPWORDS or not key.isalpha() else self._form(key, pos)
            plural = bool(form) and form[0] == "n" and key == form[1] + "s"
            out: list[str] = []
            if form and (form[1] == key or plural):
                for lemma in self._senses(form[1], form[0])[:SENSES]:
                    for name in lemma.synset().lemma_names():
                        name = name + "s" if plural and not name.endswith(("s", "x", "z", "y", "ch", "sh")) else name
                        if name.isalpha() and name.islower() and name != key and name not in out \
                                and (not plural or name.endswith("s")):
                            out.append(name)
            self._synonyms[(key, pos)] = out
        return self._synonyms[(key, pos)]

    def _form(self, word: str, pos: str | None) -> tuple[str, str] | None:
        """(POS, base form) of ``word`` in ``pos``, or its main form when ``pos`` is None."""
        if pos is None:
            return self.main_form(word)
        base = self.reader.morphy(word, pos)
        return (pos, base) if base else None

    def pos_of_synonyms(self, word: str) -> set[str]:
        """The POS of every synset that offers ``word``'s synonyms (for checks and tests)."""
        form = self.main_form(word)
        return {lemma.synset().pos() for lemma in self._senses(form[1], form[0])[:SENSES]} if form else set()


_LOADED: dict[Path, WordNet] = {}


def get_wordnet() -> WordNet:
    """The WordNet for the current data home, set up and loaded once per process."""
    folder = install_wordnet()
    if folder not in _LOADED:
        _LOADED[folder] = WordNet(folder)
    return _LOADED[folder]
