"""``fexa evaluate-cascade``: CFC-SP's cascade + Smooth Predicting on Aff-Wild2's validation frames."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from fexa.analysis.cfc_sp_eval import evaluate_cascade, markdown, write_cascade_results

    table = evaluate_cascade(args.coarse, args.negative, args.eight, args.window, progress=not args.quiet)
    if args.out:
        write_cascade_results(table, args.out)
    print(markdown(table), end="")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate-cascade", help="CFC-SP: the cascade with Smooth Predicting on Aff-Wild2's validation set",
                       description="Score trained CFC-SP nets (fexa train runs of configs/cfc_sp) per frame on "
                       "Aff-Wild2's validation set (fexa's affwild2 test split): 8-class macro-F1 of the whole "
                       "cascade (coarse members' probabilities averaged, Negative resolved by the negative net), of "
                       "each coarse member with the negative net, of each 8-class net, and each net on its own task "
                       "(5 coarse classes; 4 negative classes on the negative frames), for each Smooth Predicting "
                       "window. Frames whose face was not usable count as wrong and are counted.")
    p.add_argument("--coarse", nargs="+", default=[], metavar="RUN",
                   help="coarse-net member runs (e.g. Swin-S, IR-152, HRNet)")
    p.add_argument("--negative", nargs="+", default=[], metavar="RUN",
                   help="the negative net's run (RepVGG); several are one ensemble (probabilities averaged)")
    p.add_argument("--eight", nargs="+", default=[], metavar="RUN",
                   help="runs trained on the 8 classes directly (Table 1's baselines)")
    p.add_argument("--window", nargs="+", type=int, default=[256], metavar="W",
                   help="Smooth Predicting windows in frames, 0 = off (default 256; Table 4: 0 32 64 128 256 512)")
    p.add_argument("--out", metavar="DIR", help="also write DIR/cascade.{csv,md}")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
