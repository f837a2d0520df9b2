"""The words of a verification request's life (:mod:`sealgate.verify.requests`): its
mode, tier, state and the steps taken on it. Apart, and needing nothing, so that the client
library (:mod:`sealgate.client`) reads the gateway's answers in the same words."""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    VERIFY = "verify"  # 协查核验: the result of checking shared data
    ISSUE = "issue"  # 在线开具: a proof issued online


class Tier(enum.StrEnum):
    DATABASE = "database"  # (一) facts held in a database: 30 minutes
    PAPER = "paper"  # (二) paper archives: 1 working day
    ARCHIVE = "archive"  # (三) incomplete historical records: 2 working days, +5 once
    ONLINE = "online"  # 在线开具: 1 working day
    COMPLEX = "complex"  # 在线开具, hard cases: 2 working days, +5 once


class State(enum.StrEnum):
    ACCEPTED = "accepted"  # registered and accepted at once on arrival
    ANSWERED = "answered"
    RETURNED = "returned"
    OVERDUE = "overdue"  # derived: accepted and past due_at; never stored


class Action(enum.StrEnum):
    REGISTER = "register"
    RESPOND = "respond"
    RECLASSIFY = "reclassify"
    EXTEND = "extend"
    RETURN = "return"
