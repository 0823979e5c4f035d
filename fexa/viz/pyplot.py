"""matplotlib's pyplot on the file-only Agg backend, loaded on first use: importing it takes about
0.4 s, which ``fexa --help`` and an error on a missing input should not pay."""

from __future__ import annotations


def pyplot():
    """The ``matplotlib.pyplot`` module, with the Agg backend selected."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
