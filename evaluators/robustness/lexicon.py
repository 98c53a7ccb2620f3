"""Small word lists the perturbations use: keyboard neighbours, contractions, stop words, names.

Hand-written and project-owned on purpose: they are short, they must not change under a
run (a perturbation is only reproducible if its tables are), and the libraries that ship
such lists (nlpaug, TextAttack, NLTK's stopwords corpus) either need a download or do not
install beside transformers 5. Each list is small enough to review at a glance.
"""

from __future__ import annotations

# QWERTY neighbours of each lower-case letter (same row and the rows above and below).
KEYBOARD_NEIGHBOURS: dict[str, str] = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj",
    "i": "uojk", "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedxz", "d": "serfcx",
    "f": "drtgvc", "g": "ftyhbv", "h": "gyujnb", "j": "huikmn", "k": "jiolm", "l": "kop",
    "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}

# Contraction -> expansion. Only unambiguous, common forms: "it's" could be "it has" and
# "he'd" "he would" or "he had", so those pick the more frequent reading.
CONTRACTIONS: dict[str, str] = {
    "aren't": "are not", "can't": "cannot", "couldn't": "could not", "didn't": "did not",
    "doesn't": "does not", "don't": "do not", "hadn't": "had not", "hasn't": "has not",
    "haven't": "have not", "he's": "he is", "i'm": "i am", "i've": "i have", "i'll": "i will",
    "i'd": "i would", "isn't": "is not", "it's": "it is", "let's": "let us", "she's": "she is",
    "shouldn't": "should not", "that's": "that is", "there's": "there is", "they're": "they are",
    "they've": "they have", "they'll": "they will", "wasn't": "was not", "we're": "we are",
    "we've": "we have", "we'll": "we will", "weren't": "were not", "what's": "what is",
    "won't": "will not", "wouldn't": "would not", "you're": "you are", "you've": "you have",
    "you'll": "you will", "who's": "who is",
}
EXPANSIONS: dict[str, str] = {v: k for k, v in CONTRACTIONS.items()}

# Function words never substituted by synonyms nor chosen by the attack: WordNet lists
# "a" (vitamin A), "in" (inch), "it" (information technology)... as nouns.
STOPWORDS: frozenset[str] = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its
itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
""".split())

# Capitalised names swapped by the `entities` perturbation, each only within its own list.
# Names that are also common capitalised words at a sentence start (Mark, Young, King,
# Hall, Will) are left out.
ENTITIES: dict[str, tuple[str, ...]] = {
    "person": ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
               "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
               "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa",
               "Anthony", "Emma", "Olivia", "Paul", "Sophie", "Andrew", "Laura",
               "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
               "Taylor", "Clark", "Lewis", "Walker", "Wright", "Harris", "Turner"),
    "city": ("London", "Paris", "Berlin", "Madrid", "Rome", "Dublin", "Glasgow", "Manchester",
             "Liverpool", "Birmingham", "Leeds", "Edinburgh", "Cardiff", "Belfast", "Chicago",
             "Boston", "Seattle", "Toronto", "Sydney", "Melbourne", "Tokyo", "Beijing", "Moscow",
             "Mumbai", "Delhi", "Cairo", "Lagos", "Nairobi", "Vienna", "Prague", "Milan", "Lisbon"),
    "country": ("Britain", "England", "Scotland", "Wales", "Ireland", "France", "Germany", "Spain",
                "Italy", "Portugal", "Russia", "China", "Japan", "India", "Brazil", "Canada",
                "Australia", "Mexico", "Egypt", "Nigeria", "Kenya", "Sweden", "Norway", "Poland",
                "Greece", "Turkey", "Iran", "Iraq", "Israel", "Argentina", "Chile", "Korea"),
}
ENTITY_KIND: dict[str, str] = {name: kind for kind, names in ENTITIES.items() for name in names}
