"""The ``fexa`` command line."""


def add_folder_as(parser) -> None:
    """The ``--folder-as`` option of commands that take folders (``fexa.extract.expand_inputs``)."""
    parser.add_argument("--folder-as", choices=["auto", "video", "images"], default="auto",
                        help="a folder's images: one video (its frames), separate images, or auto: one video when "
                        "their names are numbered frames of one size (default)")


def add_face_backend(parser) -> None:
    """The ``--face-backend`` option (``fexa.face.detector.TrackerConfig.backend``): what runs the face models."""
    from fexa.face.detector import BACKENDS, DEFAULT_BACKEND

    parser.add_argument("--face-backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                        help="what runs mediapipe's face models: fexa's torch rebuild of its face solutions (torch, the "
                        "default) or mediapipe 0.10.21 itself (pip install 'fexa[mediapipe]'; faster on a CPU); a "
                        "different backend is a different cache entry")


def add_task(parser, auto: str = "detected from the movement") -> None:
    """The ``--task`` option: a clinical task (``fexa.analysis.tasks.TASKS``) or auto (``auto``: what auto does)."""
    from fexa.analysis.tasks import TASKS

    parser.add_argument("--task", default="auto", choices=[*TASKS, "auto"], metavar="TASK",
                        help=f"the task performed: {', '.join(TASKS)}, or auto ({auto}; default)")


def add_time_range(parser) -> None:
    """``--start``/``--end``: the part of each input to analyse, in seconds of the input."""
    parser.add_argument("--start", type=float, default=None, metavar="SECONDS",
                        help="analyse from this time of each input (seconds; e.g. one task of a visit's recording); "
                        "the outputs keep the input's timestamps")
    parser.add_argument("--end", type=float, default=None, metavar="SECONDS",
                        help="analyse up to this time of each input (seconds; default: its end)")
