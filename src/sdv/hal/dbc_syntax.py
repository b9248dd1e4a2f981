"""The DBC grammar as the repair pass reads it: token kinds, statement keywords, what each statement expects, and
the records of messages and signals the pass collects (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

__all__ = [
    "BARE_FRACTION_RE",
    "ID_AT_INDEX_1",
    "INDEPENDENT_SIGNALS",
    "KEYWORDS",
    "NEAR_RE",
    "NEWLINE_RE",
    "OBJECT_KEYWORDS",
    "OBJECT_POSITION",
    "SEMICOLON_TERMINATED",
    "STARTERS",
    "SYNTAX",
    "TOKEN_RE",
    "MessageEntry",
    "SignalEntry",
    "Statement",
    "Token",
    "multiplexer_ids",
    "signal_bits",
    "whole_number",
]

_NUMBER: Final = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"
# The token kinds follow cantools' DBC tokenizer, with three differences. A number may start with "." and a
# number glued to letters or "_" is an identifier, so that the repairs see what cantools would misread. And a
# well-formed signal line (standard numbers, names starting with a letter) is one token: none of the repairs
# applies to it, and it is most of a DBC file, so this keeps the pass fast.
TOKEN_RE: Final = re.compile(
    rf"""
    (?P<skip>[ \t\r\n]+|//[^\n]*)
    | (?P<signal>
        SG_[ \t]+(?P<sg_name>{_NAME})(?:[ \t]+(?P<sg_mux>M|m\d+M?))?[ \t]*:
        [ \t]*(?P<sg_start>\d+)\|(?P<sg_length>\d+)@(?P<sg_order>[01])[+-]
        [ \t]*\([ \t]*{_NUMBER}[ \t]*,[ \t]*{_NUMBER}[ \t]*\)
        [ \t]*\[[ \t]*{_NUMBER}[ \t]*\|[ \t]*{_NUMBER}[ \t]*\]
        [ \t]*"(?:\\"|[^"])*"
        [ \t]*{_NAME}(?:[ \t]*,[ \t]*{_NAME})*
        (?=[ \t]*(?:\r?\n|//|\Z))
      )
    | (?P<string>"(?:\\"|[^"])*?")
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_]))
    | (?P<word>[A-Za-z0-9_]+)
    | (?P<punct>[()\[\],|@+\-;:])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# What a syntax error message quotes: the token at the error's offset.
NEAR_RE: Final = re.compile(r'"[^"\n]*"?|[A-Za-z0-9_.]+|\S')
NEWLINE_RE: Final = re.compile(r"\n")
BARE_FRACTION_RE: Final = re.compile(r"^([-+]?)\.")
_WHOLE_RE: Final = re.compile(r"[-+]?[0-9]+")

# Every keyword cantools' tokenizer knows: a word with one of these values starts or structures a statement.
KEYWORDS: Final = frozenset(
    {
        "BA_",
        "BA_DEF_",
        "BA_DEF_DEF_",
        "BA_DEF_DEF_REL_",
        "BA_DEF_REL_",
        "BA_DEF_SGTYPE_",
        "BA_REL_",
        "BA_SGTYPE_",
        "BO_",
        "BO_TX_BU_",
        "BS_",
        "BU_",
        "BU_BO_REL_",
        "BU_EV_REL_",
        "BU_SG_REL_",
        "CAT_",
        "CAT_DEF_",
        "CM_",
        "ENVVAR_DATA_",
        "EV_",
        "EV_DATA_",
        "FILTER",
        "NS_",
        "NS_DESC_",
        "SG_",
        "SG_MUL_VAL_",
        "SGTYPE_",
        "SGTYPE_VAL_",
        "SIG_GROUP_",
        "SIG_TYPE_REF_",
        "SIG_VALTYPE_",
        "SIGTYPE_VALTYPE_",
        "VAL_",
        "VAL_TABLE_",
        "VERSION",
    }
)
# Statements that end with ";". The others (VERSION, NS_, BS_, BU_, BO_, SG_) end where the next one starts.
SEMICOLON_TERMINATED: Final = frozenset(
    {
        "BA_",
        "BA_DEF_",
        "BA_DEF_DEF_",
        "BA_DEF_DEF_REL_",
        "BA_DEF_REL_",
        "BA_REL_",
        "BO_TX_BU_",
        "CM_",
        "ENVVAR_DATA_",
        "EV_",
        "SG_MUL_VAL_",
        "SIG_GROUP_",
        "SIG_VALTYPE_",
        "VAL_",
        "VAL_TABLE_",
    }
)
# Token kinds that start a statement (a keyword, or a whole signal line).
STARTERS: Final = frozenset({"keyword", "signal"})
# Keywords that name an object type inside another statement (CM_ SG_ ..., BA_ "x" BO_ ...). Anywhere else
# they start a new statement.
OBJECT_KEYWORDS: Final = frozenset({"BO_", "SG_", "BU_", "EV_", "BU_SG_REL_", "BU_BO_REL_", "BU_EV_REL_"})
# Where an object keyword may stand inside a statement: its token index, or None for anywhere.
OBJECT_POSITION: Final[Mapping[str, int | None]] = {
    "CM_": 1,
    "BA_DEF_": 1,
    "BA_": 2,
    "BA_REL_": None,
    "BA_DEF_REL_": None,
}
# Statements whose token 1 is a message id when it is a number (VAL_ may also name an environment variable).
ID_AT_INDEX_1: Final = frozenset({"VAL_", "SIG_VALTYPE_", "BO_TX_BU_", "SG_MUL_VAL_", "SIG_GROUP_"})

# What each statement should look like, for syntax errors.
SYNTAX: Final[Mapping[str, str]] = {
    "VERSION": 'VERSION "<text>"',
    "NS_": "NS_ : <keyword> ...",
    "BS_": "BS_:",
    "BU_": "BU_: <node> ...",
    "BO_": "BO_ <id> <name>: <length> <sender>",
    "SG_": (
        'SG_ <name> [M|m<value>] : <start>|<length>@<0|1><+|-> (<factor>,<offset>) [<min>|<max>] "<unit>" '
        "<receiver>,..."
    ),
    "CM_": 'CM_ [BU_ <node> | BO_ <id> | SG_ <id> <signal> | EV_ <variable>] "<text>";',
    "BA_DEF_": 'BA_DEF_ [BU_|BO_|SG_|EV_] "<name>" <INT|HEX|FLOAT|STRING|ENUM> [<min> <max> | "<item>",...];',
    "BA_DEF_DEF_": 'BA_DEF_DEF_ "<name>" <value>;',
    "BA_": 'BA_ "<name>" [BU_ <node> | BO_ <id> | SG_ <id> <signal> | EV_ <variable>] <value>;',
    "BA_DEF_REL_": 'BA_DEF_REL_ <BU_SG_REL_|BU_BO_REL_|BU_EV_REL_> "<name>" <type> ...;',
    "BA_DEF_DEF_REL_": 'BA_DEF_DEF_REL_ "<name>" <value>;',
    "BA_REL_": 'BA_REL_ "<name>" BU_SG_REL_ <node> SG_ <id> <signal> <value>;',
    "VAL_": 'VAL_ <id> <signal> <value> "<label>" ...;',
    "VAL_TABLE_": 'VAL_TABLE_ <name> <value> "<label>" ...;',
    "SIG_VALTYPE_": "SIG_VALTYPE_ <id> <signal> : <0|1|2|3>;",
    "BO_TX_BU_": "BO_TX_BU_ <id> : <node>,...;",
    "SG_MUL_VAL_": "SG_MUL_VAL_ <id> <signal> <multiplexer> <low>-<high>,...;",
    "SIG_GROUP_": "SIG_GROUP_ <id> <group> <repetitions> : <signal> ...;",
    "EV_": 'EV_ <name> : <type> [<min>|<max>] "<unit>" <initial> <id> <access> <node>,...;',
    "ENVVAR_DATA_": "ENVVAR_DATA_ <variable> : <size>;",
}


class Token(NamedTuple):
    kind: str
    value: str
    start: int
    end: int


@dataclass
class Statement:
    keyword: str | None
    tokens: list[Token]
    dropped: bool = False


@dataclass
class SignalEntry:
    name: str
    line: int
    start: int
    length: int
    little_endian: bool
    multiplexer_ids: frozenset[int] | None


@dataclass
class MessageEntry:
    dbc_id: int
    name: str
    line: int
    length: int
    signals: dict[str, SignalEntry] = field(default_factory=dict)


def whole_number(text: str) -> int | None:
    """The value of an optionally signed decimal integer (how cantools reads sizes and bits), else None."""
    return int(text) if _WHOLE_RE.fullmatch(text) else None


def multiplexer_ids(mux: str) -> frozenset[int] | None:
    # "m3" and "m3M" (a multiplexed multiplexer) are shown for multiplexer value 3; "M" and "" always.
    if mux.startswith("m") and mux[1:].rstrip("M").isdigit():
        return frozenset({int(mux[1:].rstrip("M"))})
    return None


def signal_bits(signal: SignalEntry) -> list[int]:
    if signal.little_endian:
        return list(range(signal.start, signal.start + signal.length))
    # Motorola order: the start bit is the most significant one, counted in the DBC's sawtooth numbering.
    bits = []
    position = signal.start
    for _ in range(signal.length):
        bits.append(position)
        position = position + 15 if position % 8 == 0 else position - 1
    return bits


# cantools skips this pseudo message (it holds signals assigned to no message), so its id is no frame id.
INDEPENDENT_SIGNALS: Final = "VECTOR__INDEPENDENT_SIG_MSG"
