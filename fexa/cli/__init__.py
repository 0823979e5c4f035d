"""The ``fexa`` command line."""


def add_folder_as(parser) -> None:
    """The ``--folder-as`` option of commands that take folders (``fexa.extract.expand_inputs``)."""
    parser.add_argument("--folder-as", choices=["auto", "video", "images"], default="auto",
                        help="a folder's images: one video (its frames), separate images, or auto: one video when "
                        "their names are numbered frames of one size (default)")
