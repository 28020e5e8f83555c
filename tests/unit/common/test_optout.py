"""Opt-out keywords: Twilio's defaults on the whole trimmed body, OptOutType first."""

from __future__ import annotations

import pytest

from notifier.common.domain.optout import OptChange, classify, keyword


@pytest.mark.parametrize(
    "body", ["STOP", "stop", " Stop\n", "STOPALL", "unsubscribe", "Cancel", "END", "quit"]
)
def test_the_default_opt_out_keywords_opt_out(body: str) -> None:
    assert classify(body, None) is OptChange.OPT_OUT


@pytest.mark.parametrize("body", ["START", "start", " Yes ", "UNSTOP"])
def test_the_default_opt_in_keywords_opt_back_in(body: str) -> None:
    assert classify(body, None) is OptChange.OPT_IN


@pytest.mark.parametrize(
    "body",
    ["HELP", "info", "", "   ", "stop please", "please stop", "STOP.", "ST OP", "yes!", "Thanks"],
)
def test_help_and_anything_but_a_whole_keyword_change_nothing(body: str) -> None:
    assert classify(body, None) is None


@pytest.mark.parametrize(
    ("body", "opt_out_type", "expected"),
    [
        ("ARRET", "STOP", OptChange.OPT_OUT),  # a custom keyword Twilio recognised
        ("REPRENDRE", "start", OptChange.OPT_IN),
        ("STOP", "HELP", None),  # Twilio says it is a help request: that wins
        ("START", "STOP", OptChange.OPT_OUT),
        ("STOP", "", OptChange.OPT_OUT),  # empty means absent
        ("STOP", "SOMETHING_NEW", OptChange.OPT_OUT),  # unknown type: the body decides
        ("hello", "SOMETHING_NEW", None),
    ],
)
def test_twilios_opt_out_type_wins_when_present(
    body: str, opt_out_type: str, expected: OptChange | None
) -> None:
    assert classify(body, opt_out_type) is expected


def test_the_recorded_keyword_is_the_body_keyword_else_twilios_type() -> None:
    assert keyword(" unsubscribe ", None) == "UNSUBSCRIBE"
    assert keyword("stop", "STOP") == "STOP"
    assert keyword("ARRET", "STOP") == "STOP"
    # The body is a keyword of the other change: Twilio's type decided, so it is recorded.
    assert keyword("START", "STOP") == "STOP"
