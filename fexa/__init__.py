"""fexa: Facial EXpression Analysis — face videos to expression labels and clinical expression-quality scores."""

__version__ = "0.1.0"
