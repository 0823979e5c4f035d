"""Exceptions fexa raises for problems with the user's input (shown as one line by the CLI)."""


class FexaError(Exception):
    """Base class: a problem with input or configuration that the user can fix."""


class MediaError(FexaError):
    """A file or folder cannot be read as video, image or frames."""
