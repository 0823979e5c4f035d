"""The clinical tasks fexa analyses and the per-frame signal each moves: plain definitions, kept
free of numpy/scipy so that the command line can list them without loading the analysis."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """A clinical task and the per-frame signal that moves in it (``direction`` +1: the signal
    grows, -1: it shrinks; no signal: the face should stay still)."""

    name: str
    description: str
    signal: str | None = None
    direction: int = 1


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("sit_at_rest", "PFED5 'Sit at rest': face relaxed; blinks and spontaneous movement"),
    Task("smile", "PFED5 'Smile'", "mouth_width", +1),
    Task("frown", "PFED5 'Frown': brows drawn down", "brow_height", -1),
    Task("squeeze_eyes", "PFED5 'Squeeze eyes': eyes shut tight", "eye_aperture", -1),
    Task("clench_teeth", "PFED5 'Clench teeth': lips spread, teeth shown", "mouth_width", +1),
    Task("blow", "Toronto NeuroFace BLOW: cheeks puffed, lips pursed", "mouth_width", -1),
    Task("kiss", "Toronto NeuroFace KISS: lips pursed forward", "mouth_width", -1),
    Task("open", "Toronto NeuroFace OPEN: mouth opened wide", "mouth_opening", +1),
    Task("spread", "Toronto NeuroFace SPREAD: lips spread wide ('eee')", "mouth_width", +1),
    Task("brow", "Toronto NeuroFace BROW: brows raised", "brow_height", +1),
    Task("none", "no single task (ordinary footage): only the task-free measures"),
)}


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name is an error listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)} (or auto)") from None


def task_of(label: object) -> str:
    """A dataset's task label (e.g. PFED5 'squeeze_eyes', Toronto NeuroFace 'BLOW') as a TASKS
    name, or ``auto`` when it names none."""
    name = str(label).strip().lower().replace(" ", "_")
    return name if name in TASKS else "auto"
