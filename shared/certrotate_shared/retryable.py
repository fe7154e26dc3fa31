"""The exception any module raises to say "try the same thing again later".

Apart from failures.py, which classifies the errors of every layer (SEPM, host operations,
messages) and so imports them all: a module those layers use (the site directory) raises this
without importing them back."""

from __future__ import annotations


class TransientError(Exception):
    """Raise to say: nothing is wrong with the request, try the same thing again later."""
