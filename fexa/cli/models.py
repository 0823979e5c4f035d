"""``fexa models``: every registered model with its parameter count and the reference count."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from fexa.models import count_parameters, create_model, get_entry, list_models

    names = args.names or list_models()
    print(f"{'model':24s} {'parameters':>12s} {'reference':>12s} {'diff':>8s}  paper           description")
    for name in names:
        e = get_entry(name)
        n = count_parameters(create_model(name))
        ref = f"{e.reference_params:,}" if e.reference_params else "-"
        diff = f"{100 * (n - e.reference_params) / e.reference_params:+.2f}%" if e.reference_params else ""
        print(f"{name:24s} {n:12,d} {ref:>12s} {diff:>8s}  {e.paper:15s} {e.description}")
        if e.param_note:
            print(f"{'':24s} {'':12s} note: {e.param_note} ({e.param_difference:+,d})")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the models with their parameter counts",
                       description="Build every registered model (random weights) and print its parameter "
                       "count beside the count measured on the authors' code, where there is one.")
    p.add_argument("names", nargs="*", metavar="MODEL", help="only these models")
    p.set_defaults(func=run)
