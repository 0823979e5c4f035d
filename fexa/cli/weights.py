"""``fexa weights``: the published weight files fexa knows, checking downloaded ones, and importing
published trained models as runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "configs"  # the shipped configs, in a source checkout


def run_list(args: argparse.Namespace) -> int:
    from fexa.models.weights import NOT_PUBLISHED, PUBLISHED, configs_using, weights_folder

    folder = weights_folder(args.weights)
    for p in PUBLISHED.values():
        used = configs_using(p.name, CONFIGS) if CONFIGS.is_dir() else []
        print(f"{p.name}\n  file          {p.filename}"
              + (f"  ({'present' if (folder / p.filename).is_file() else 'absent'} in {folder})" if folder else "")
              + f"\n  initialises   {p.initialises}\n  loads into    fexa model {p.model!r}"
              + (f", its {p.submodule!r}" if p.submodule else "") + f" (mapping {p.source!r})"
              f"\n  get it from   {p.where}\n  used by       {', '.join(used) or '-'}"
              f"\n  holds         {len(p.expected())} tensors (`fexa weights show {p.name}` lists them)")
    print("\nInitialisations their authors did not publish (the stand-in files above):")
    for what in NOT_PUBLISHED.values():
        print(f"  {what}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from fexa.models.weights import get_published

    for key, shape in get_published(args.name).expected().items():
        print(f"{key}\t{list(shape)}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Every known file in DIR checked strictly; absent files named with where to get them. Exit
    status 1 when any is absent or does not fit."""
    from fexa.errors import FexaError
    from fexa.models.weights import PUBLISHED, load_published

    folder = Path(args.folder)
    if not folder.is_dir():
        raise FexaError(f"no weights folder at {folder}")
    bad = 0
    for p in PUBLISHED.values():
        path = folder / p.filename
        if not path.is_file():
            bad += 1
            print(f"absent   {p.filename:36s} {p.name}: from {p.where}")
            continue
        try:
            print(f"ok       {p.filename:36s} {p.name}: {load_published(p, path)[1]}")
        except FexaError as e:
            bad += 1
            print(f"WRONG    {p.filename:36s} {p.name}: {e}", file=sys.stderr)
    return 1 if bad else 0


def run_import(args: argparse.Namespace) -> int:
    from fexa.train.published import import_published

    out = import_published(args.file, args.as_name, args.out, args.fold)
    print(f"{out}: a fexa run; use it with `fexa analyze VIDEO --model {out}`")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="the authors' published weight files: list, check, import",
                       description="List the published weight files fexa knows (what each initialises, which configs "
                       "use it, where its authors publish it), check downloaded files strictly, or import a published "
                       "trained model as a fexa run. Configs find the files in one folder: FEXA_WEIGHTS or --weights.")
    p.add_argument("--weights", metavar="DIR", help="the weights folder (default $FEXA_WEIGHTS): say which files are there")
    p.set_defaults(func=run_list)
    ws = p.add_subparsers(dest="action", metavar="ACTION")
    ls = ws.add_parser("list", help="the published files fexa knows (what bare `fexa weights` prints)")
    ls.add_argument("--weights", metavar="DIR", help="the weights folder (default $FEXA_WEIGHTS): say which files are there")
    ls.set_defaults(func=run_list)
    c = ws.add_parser("check", help="verify the files in a weights folder (exact keys and shapes, strict load); "
                      "exit status 1 when one is absent or does not fit")
    c.add_argument("folder", metavar="DIR")
    c.set_defaults(func=run_check)
    s = ws.add_parser("show", help="the tensors (key and shape) a published file must hold")
    s.add_argument("name", metavar="NAME")
    s.set_defaults(func=run_show)
    i = ws.add_parser("import", help="turn a published trained model into a run for fexa analyze --model")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--as", dest="as_name", required=True, metavar="MODEL", help="which model it is: former_dfer_dfew")
    i.add_argument("--fold", type=int, default=1, help="the DFEW fold it was trained on (default 1)")
    i.add_argument("--out", required=True, metavar="RUN", help="the run folder to create")
    i.set_defaults(func=run_import)
