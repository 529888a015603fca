"""app/search.py: `q` into terms, and terms into FTS5's syntax, without a database."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.search import Term, Word, fts5_query, parse


def words(*texts: str) -> Term:
    return Term(tuple(Word(t.rstrip("*"), t.endswith("*")) for t in texts))


@pytest.mark.parametrize(
    ("q", "terms"),
    [
        ("hello", [words("hello")]),
        ("  Café  au-lait ", [words("Café"), words("au"), words("lait")]),
        ("deplo*", [words("deplo*")]),
        ("*deplo", [words("deplo")]),
        ("de*plo", [words("de*"), words("plo")]),
        ('"foo.png" x', [words("foo", "png"), words("x")]),
        ('"a b*" c', [words("a", "b*"), words("c")]),
        ('"unclosed phrase', [words("unclosed", "phrase")]),
        ('a "" b', [words("a"), words("b")]),
        ("C++20", [words("C"), words("20")]),
        ("bob@example.com", [words("bob"), words("example"), words("com")]),
        ("你好世界 Привет", [words("你好世界"), words("Привет")]),
        ("e\u0301cole", [words("e\u0301cole")]),
        ("\u0301 x", [words("x")]),  # a mark alone is no word
        ("x² ½", [words("x²"), words("½")]),
        ("🎉 * ** : ^ - ( )", []),
        ("", []),
    ],
)
def test_parse(q: str, terms: list[Term]) -> None:
    assert parse(q) == terms


def test_fts5_query_quotes_every_word() -> None:
    terms = parse('NEAR(a "b c*" d*')
    assert fts5_query(terms) == '"NEAR" AND "a" AND "b" + "c" * AND "d" *'


@given(st.text(max_size=300))
def test_any_q_parses_into_words_of_letters_and_digits(q: str) -> None:
    for term in parse(q):
        assert term.words
        for word in term.words:
            assert word.text and '"' not in word.text and "*" not in word.text
            assert not any(c.isspace() for c in word.text)
