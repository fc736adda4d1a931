import pytest

from capsafe.capability import extract_number, score_exact_number


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Step 1: 3 + 4 = 7.\n#### 7", "7"),
        ("#### 1,234", "1234"),
        ("so the total is 12.\n#### 12.", "12"),
        ("#### $5", "5"),
        ("#### -3", "-3"),
        ("#### 2.50", "2.5"),
        ("#### 42.0", "42"),
        ("The answer is 18 apples, not 20", "18"),  # answer phrase beats later numbers
        ("He had 3, then 5, finally 9.", "9"),  # last-number fallback
        ("I'm sorry, I can't help.", None),
        ("#### 7 and later text 99", "7"),  # the marker wins over the last number
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_score_compares_numerically():
    ref = "3 + 4 = 7\n#### 7"
    assert score_exact_number("Sure! ... #### 7.0", ref).correct
    wrong = score_exact_number("Sure! ... #### 8", ref)
    assert not wrong.correct and wrong.extracted == "8"
    none = score_exact_number("I'm sorry", ref)
    assert not none.correct and none.extracted is None


def test_reference_without_number_is_an_error():
    with pytest.raises(ValueError, match="no number"):
        score_exact_number("7", "seven")
