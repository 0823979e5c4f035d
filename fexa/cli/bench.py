"""``fexa bench loader``: size ``data.workers`` for a config on this machine."""

from __future__ import annotations

import argparse
import json


def run_bench_loader(args: argparse.Namespace) -> int:
    from fexa.train.bench import bench_loader, describe
    from fexa.train.config import load_config

    cfg = load_config(args.config, args.set)
    r = bench_loader(cfg, workers=args.workers, items=args.items, with_model=args.model, source=args.source,
                     steps=args.steps, progress=not args.json, cache_mb=args.cache_mb)
    print(json.dumps(r) if args.json else describe(r))
    return 0


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="benchmarks (bench loader: how many loader workers a config needs)")
    what = b.add_subparsers(dest="what", required=True)
    ld = what.add_parser("loader", help="time a config's training items, loader workers and model step",
                         description="Build the config's training dataset (extracting and building its store first "
                         "if needed, not timed), then print the median CPU ms per item, items/s per worker, peak "
                         "RSS per worker and, with --model, the model's step rate on the current device and which "
                         "of the two limits training.")
    ld.add_argument("config", help="YAML config, e.g. configs/stt/dfew.yaml")
    ld.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    ld.add_argument("--workers", type=int, default=1, metavar="N", help="loader worker processes (default 1)")
    ld.add_argument("--items", type=int, default=200, metavar="N", help="items timed (default 200)")
    ld.add_argument("--model", action="store_true", help="also time the model's training step (synthetic and fed)")
    ld.add_argument("--steps", type=int, default=20, help="model steps timed (default 20)")
    ld.add_argument("--source", choices=("store", "video"), default="store",
                    help="read frames from the training store (default) or decode whole crop videos (the old path)")
    ld.add_argument("--cache-mb", type=int, default=256, metavar="MB",
                    help="each process's cache of opened store entries (default 256, as in training; 0: every item "
                    "opens its entry, as in a dataset far larger than the cache)")
    ld.add_argument("--json", action="store_true", help="print one JSON object")
    ld.set_defaults(func=run_bench_loader)
