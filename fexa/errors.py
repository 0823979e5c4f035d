"""Exceptions fexa raises for problems with the user's input (shown as one line by the CLI)."""


class FexaError(Exception):
    """Base class: a problem with input or configuration that the user can fix."""


class ConfigError(FexaError, ValueError):
    """A setting whose value cannot work (the message names the setting and the value)."""


class MediaError(FexaError):
    """A file or folder cannot be read as video, image or frames."""


def os_error_reason(e: OSError, where: str | None = None) -> str:
    """One line for a failed read or write: what happened to which path (``where`` when the error
    names none, e.g. a write that ran out of disk) and what to do. Not an "internal error": the
    disk, the permissions or the path given are the user's to fix."""
    import errno

    path = e.filename or where or "the output"
    advice = {
        errno.ENOSPC: f"no space left on the disk holding {path}: free some space or write elsewhere (--out), then "
                      "rerun (finished inputs are kept)",
        errno.EDQUOT: f"disk quota exceeded writing {path}: free some space or write elsewhere (--out), then rerun",
        errno.EROFS: f"cannot write {path}: the file system is read-only; choose another output folder (--out)",
        errno.EACCES: f"cannot write {path}: permission denied; choose an output folder you can write (--out)",
        errno.EPERM: f"cannot write {path}: operation not permitted; choose an output folder you can write (--out)",
        errno.ENOTDIR: f"{path}: a file stands where a folder is needed; --out must name a folder",
        errno.EEXIST: f"{path} exists and is not a folder; --out must name a folder",
    }
    return advice.get(e.errno, f"cannot read or write {path}: {e.strerror or e}")
