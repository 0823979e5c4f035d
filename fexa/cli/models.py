"""``fexa models``: every registered model with its parameter count and the reference count;
``--flops`` adds each model's compute at its paper's input size beside the papers' counts."""

from __future__ import annotations

import argparse


def _shapes(inputs: tuple) -> str:
    """The tensors of a model's inputs as '[1, 3, 112, 112] + ...' (None inputs left out)."""
    return " + ".join(str(list(x.shape)) for x in inputs if x is not None)


def print_flops(names: list[str]) -> None:
    """Per model: parameters, GFLOPs and G multiply-adds on one paper-sized sample; then the papers'
    own counts beside fexa's."""
    import torch

    from fexa.models.flops import PAPER_COSTS, PAPER_INPUTS, model_cost

    print(f"{'model':24s} {'parameters':>12s} {'GFLOPs':>9s} {'GMACs':>9s}  input (one sample)")
    for name in names:
        n, flops = model_cost(name)
        with torch.device("meta"):
            shapes = _shapes(PAPER_INPUTS[name](1))
        print(f"{name:24s} {n:12,d} {flops / 1e9:9.2f} {flops / 2e9:9.2f}  {shapes}")
    costs = [c for c in PAPER_COSTS if c.model in names]
    if costs:
        print("\nthe papers' counts (their 'FLOPs' are multiply-adds: compare with GMACs)")
        print(f"{'source':40s} {'model':16s} {'paper params':>12s} {'fexa':>8s} {'paper GFLOPs':>12s} {'fexa GMACs':>10s}")
        for c in costs:
            n, flops = model_cost(c.model, **c.options)
            print(f"{c.source:40s} {c.model:16s} {c.params / 1e6:11.1f}M {n / 1e6:7.1f}M {c.flops / 1e9:12.1f} "
                  f"{flops / 2e9:10.2f}")
    print("\nFLOPs: torch FlopCounterMode on the meta device, 2 per multiply-add (matrix products, convolutions, "
          "attention; element-wise operations not counted)")


def run(args: argparse.Namespace) -> int:
    from fexa.errors import FexaError
    from fexa.models import count_parameters, create_model, get_entry, list_models

    names = args.names or list_models()
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        raise FexaError(f"MODEL {unknown[0]!r} is not a fexa model; models: {', '.join(list_models())}")
    if args.flops:
        print_flops(names)
        return 0
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
    p.add_argument("--flops", action="store_true",
                   help="each model's FLOPs on one sample at its paper's input size (built on the meta device, "
                        "no weights), beside the papers' parameter and FLOP counts")
    p.set_defaults(func=run)
