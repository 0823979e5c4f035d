"""``fexa baseline``: the geometric-features + Random Forest baseline on an experiment's data."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from fexa.analysis.baseline import cross_validate

    df = cross_validate(args.config, args.folds, args.set, args.trees)
    print(df.to_string(index=False))
    counts = ("fold", "test_subjects", "test_samples", "test_unusable")
    print("mean: " + ", ".join(f"{c} {df[c].mean():.4f}" for c in df.columns if c not in counts))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("baseline", help="geometric features + Random Forest, cross-validated by subject",
                       description="Compute the kinematic measures of every sample of a config's dataset and "
                       "evaluate a random forest on them with the config's subject-wise folds.")
    p.add_argument("config")
    p.add_argument("--folds", type=int)
    p.add_argument("--trees", type=int, default=300)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=run)
