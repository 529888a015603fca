"""Turning a search `q` into terms: words, `*` prefixes and "quoted phrases", nothing else.

A word is a run of letters, digits and the marks attached to them, in any script; every other
character separates words, so no `q` is ever a syntax error. The terms go to the database as
bound parameters (store_search.py); neither database ever parses user text as query syntax.

The databases then cut and fold each word as they cut and fold message texts (case and accents
away), so a word that a database splits further (`x²`) becomes a phrase of its pieces there.
"""

import unicodedata
from dataclasses import dataclass

Q_MAX = 256  # characters


@dataclass(slots=True, frozen=True)
class Word:
    text: str
    prefix: bool = False  # `deplo*`: every word that begins with it


@dataclass(slots=True, frozen=True)
class Term:
    """One word, or words that must appear next to each other in this order (a phrase)."""

    words: tuple[Word, ...]


def parse(q: str) -> list[Term]:
    """The terms of `q`, all of which a message must hold; [] when `q` has no word.

    `"` opens and closes a phrase (an unclosed one runs to the end of `q`); `*` right after a
    word makes it a prefix; every other character that is not part of a word is a separator.
    """
    terms: list[Term] = []
    phrase: list[Word] | None = None
    i, n = 0, len(q)
    while i < n:
        char = q[i]
        if char == '"':
            if phrase is None:
                phrase = []
            else:
                _close(phrase, terms)
                phrase = None
            i += 1
            continue
        if not _in_word(char):
            i += 1
            continue
        start = i
        while i < n and _in_word(q[i]):
            i += 1
        prefix = i < n and q[i] == "*"
        word = Word(q[start:i], prefix)
        if not _has_base(word.text):
            continue  # only marks: nothing a database would index
        if phrase is None:
            terms.append(Term((word,)))
        else:
            phrase.append(word)
    if phrase is not None:
        _close(phrase, terms)
    return terms


def _close(phrase: list[Word], terms: list[Term]) -> None:
    if phrase:
        terms.append(Term(tuple(phrase)))


def _in_word(char: str) -> bool:
    # Letters, numbers, marks and private use: at least every character either database keeps
    # in a word, so that we never split a word a database would keep whole.
    category = unicodedata.category(char)
    return category[0] in "LNM" or category == "Co"


def _has_base(word: str) -> bool:
    return any(unicodedata.category(c)[0] in "LN" or unicodedata.category(c) == "Co" for c in word)


def fts5_query(terms: list[Term]) -> str:
    """The FTS5 MATCH expression: every word a quoted string, phrases joined with `+`.

    Words hold only letters, digits and marks, never `"`; doubling it anyway keeps the string
    closed whatever a word held.
    """
    return " AND ".join(" + ".join(_fts5_word(w) for w in term.words) for term in terms)


def _fts5_word(word: Word) -> str:
    quoted = '"' + word.text.replace('"', '""') + '"'
    return quoted + " *" if word.prefix else quoted
