"""fexa: Facial EXpression Analysis — face videos to expression labels and clinical expression-quality scores."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``fexa.Analyzer`` without importing the heavy stack at ``import fexa``."""
    if name in ("Analyzer", "Result"):
        from fexa.analysis import analyzer

        return getattr(analyzer, name)
    raise AttributeError(f"module 'fexa' has no attribute {name!r}")
