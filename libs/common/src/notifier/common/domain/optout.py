"""Opt-out keywords: whether an inbound message opts its sender out of our messages or back in.

Pure. Follows Twilio's default keywords, matched on the whole trimmed body regardless of
case; Twilio's `OptOutType`, when it sent one (Advanced Opt-Out, custom keywords), wins.
"""

from __future__ import annotations

from enum import StrEnum


class OptChange(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


# Twilio's default opt-out and opt-in keywords. HELP and INFO change nothing.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
_KEYWORDS = {OptChange.OPT_OUT: OPT_OUT_KEYWORDS, OptChange.OPT_IN: OPT_IN_KEYWORDS}

# Twilio's OptOutType values. HELP is known and changes nothing; an unknown value
# (Twilio adds them without notice) falls back to the body.
_FROM_TYPE: dict[str, OptChange | None] = {
    "STOP": OptChange.OPT_OUT,
    "START": OptChange.OPT_IN,
    "HELP": None,
}


def _normalised(text: str | None) -> str:
    return (text or "").strip().upper()


def classify(body: str, opt_out_type: str | None) -> OptChange | None:
    """The change an inbound message makes to its sender's opt-out state, or None."""
    kind = _normalised(opt_out_type)
    if kind in _FROM_TYPE:
        return _FROM_TYPE[kind]
    word = _normalised(body)
    if word in OPT_OUT_KEYWORDS:
        return OptChange.OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return OptChange.OPT_IN
    return None


def keyword(body: str, opt_out_type: str | None) -> str:
    """The word to record for the change `classify` found: the body when it is a default
    keyword of that change, else Twilio's OptOutType (the category of a custom keyword)."""
    change = classify(body, opt_out_type)
    word = _normalised(body)
    if change is not None and word in _KEYWORDS[change]:
        return word
    return _normalised(opt_out_type) or word[:32]
