"""The split type: which halves of a dataset's classes a network is trained on, named as in run specs and tables.

    random:<seed>   random halves drawn with that seed (repro.data.splits draws them)
    natman          natural / man-made classes
    all             the original study's networks of all 1000 classes (in tables of results only)

One parser for every place a split is read. Kept free of torch and the data package, so that plans and tables
use it without loading either.
"""
from __future__ import annotations

from dataclasses import dataclass

from repro.errors import UserError

FORMS = "'random:<seed>' (seed a non-negative integer, e.g. random:0) or 'natman'"
MAX_SEED = 2**32 - 1  # numpy's legacy generator takes seeds up to this


@dataclass(frozen=True)
class Split:
    family: str  # 'random', 'natman' or 'all'
    seed: int | None = None  # of a random split

    @classmethod
    def parse(cls, text: str, *, allow_all: bool = False) -> Split:
        """The split `text` names; a ValueError naming it and the accepted forms otherwise. `allow_all`: also
        'all' (a table of results may hold the original study's networks of all classes)."""
        if text == "natman" or (allow_all and text == "all"):
            return cls(text)
        if text.startswith("random:"):
            seed = text[len("random:"):]
            if not (seed.isascii() and seed.isdigit()) or int(seed) > MAX_SEED:
                raise UserError(f"bad split {text!r}: the seed must be an integer from 0 to 2**32 - 1; use {FORMS}")
            return cls("random", int(seed))
        raise UserError(f"unknown split {text!r}; use {FORMS}")

    @classmethod
    def random(cls, seed: int) -> Split:
        return cls("random", seed)

    @property
    def is_random(self) -> bool:
        return self.family == "random"

    def __str__(self) -> str:
        return f"random:{self.seed}" if self.is_random else self.family

