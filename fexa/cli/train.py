"""``fexa train`` and ``fexa evaluate``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def run_train(args: argparse.Namespace) -> int:
    from fexa.train.config import load_config
    from fexa.train.trainer import train

    if args.weights:  # the folder model.pretrained's named files are read from (also in torchrun's other processes)
        os.environ["FEXA_WEIGHTS"] = args.weights
    cfg = load_config(args.config, args.set)
    cfg.data.allow_missing = cfg.data.allow_missing or args.allow_missing
    results = train(cfg, resume=args.resume, progress=not args.quiet, resume_from=args.resume_from,
                    overwrite=args.overwrite, config_hint=args.config)
    if results:
        print((cfg.run_dir / "results.md").read_text())
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from fexa.train.config import load_config
    from fexa.train.evaluate import evaluate_run

    target = Path(args.target)
    cfg = load_config(target / "config.yaml" if target.is_dir() else target, args.set)
    results = evaluate_run(cfg, progress=not args.quiet)
    print(json.dumps(results, indent=2))
    return 0


def add_parsers(sub) -> None:
    t = sub.add_parser("train", help="train and evaluate an experiment from a YAML config",
                       description="Train a model as configured (see configs/), writing checkpoints, metrics, "
                       "TensorBoard logs, predictions and results to out/name (eval.protocol both: the paper run in "
                       "out/name/paper, the honest run in out/name/honest, results side by side in out/name). "
                       "Run it under torchrun for several processes.")
    t.add_argument("config", help="YAML config, e.g. configs/tramp_former/pfed5_smile.yaml")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    t.add_argument("--resume", action="store_true",
                   help="continue the run from its last intact checkpoint ('last', else 'previous')")
    t.add_argument("--from", dest="resume_from", metavar="CHECKPOINT",
                   help="continue from this checkpoint of the run instead (e.g. best_val); implies --resume")
    t.add_argument("--overwrite", action="store_true", help="delete the run's folder and start it over")
    t.add_argument("--allow-missing", action="store_true",
                   help="drop samples whose media do not exist (default: an error listing them)")
    t.add_argument("--weights", metavar="DIR", help="the folder of the authors' published weight files that "
                   "model.pretrained names (default $FEXA_WEIGHTS; `fexa weights` lists them)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=run_train)
    e = sub.add_parser("evaluate", help="evaluate a trained run again (its protocols)",
                       description="Recompute a run's results from its checkpoints and saved predictions.")
    e.add_argument("target", help="a run folder (out/name) or its config")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=run_evaluate)
