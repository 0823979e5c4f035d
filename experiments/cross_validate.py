"""Run a config's subject-wise k-fold cross-validation and summarise it.

    python experiments/cross_validate.py CONFIG [--folds K] [--set KEY=VALUE ...]

Each fold is an ordinary ``fexa train`` run (``<name>_fold<k>``, resumable); the summary
(``<out>/<name>_cv.{json,md}``) gives both protocols per fold and their mean and SD. For JAFFE it
also gives the Spearman correlation, over test images of the six rated expressions, between the
predicted probability of the posed expression and the raters' mean rating of it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from fexa.data.adapters import JAFFE_CLASSES, load_dataset
from fexa.metrics import spearman
from fexa.train.config import load_config
from fexa.train.trainer import train

_RATING = {"happy": "r60_HAP", "sad": "r60_SAD", "surprise": "r60_SUR", "angry": "r60_ANG", "disgust": "r60_DIS",
           "fear": "r60_FEA"}


def jaffe_rating_correlation(cfg, runs: list[Path]) -> float:
    """Spearman(predicted P(posed class), raters' mean rating of the posed expression), pooled over folds."""
    labels = load_dataset("jaffe", cfg.data.root).set_index("id")
    pairs = []
    for run in runs:
        pred = pd.read_csv(run / "predictions" / "honest.csv")  # run: the honest protocol's run folder
        for r in pred.itertuples():
            cls = JAFFE_CLASSES[int(r.target)]
            if cls in _RATING and np.isfinite(labels.loc[r.id, _RATING[cls]]):
                pairs.append((getattr(r, f"p{int(r.target)}"), labels.loc[r.id, _RATING[cls]]))
    p, rating = np.array(pairs).T
    return spearman(rating, p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--folds", type=int)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    base = load_config(args.config, args.set)
    k = args.folds or base.data.folds
    rows, runs = [], []
    for fold in range(k):
        cfg = load_config(args.config, args.set + [f"data.fold={fold}", f"data.folds={k}", f"name={base.name}_fold{fold}"])
        done = (cfg.run_dir / "results.json").exists()
        res = json.loads((cfg.run_dir / "results.json").read_text()) if done else train(
            cfg, resume=any(cfg.run_dir.glob("**/checkpoints/last/state.pt")))
        if "honest" in res:
            runs.append(cfg.run_dir / res["honest"].get("run", "."))
        row = {"fold": fold, "test_subjects": res["test_subjects"], "test_samples": res["test_samples"],
               "test_unusable": res.get("test_unusable", float("nan"))}  # scored as wrong; NaN: an older run, not known
        for p in ("paper", "honest"):
            if p in res:
                row[f"{p}_{res[p]['metric']}"] = res[p]["value"]
        rows.append(row)
        print(row, flush=True)
    df = pd.DataFrame(rows)
    summary = {"config": args.config, "folds": k, "per_fold": rows,
               "mean": df.drop(columns=["fold"]).mean().to_dict(), "sd": df.drop(columns=["fold"]).std().to_dict()}
    if base.data.dataset == "jaffe":
        summary["jaffe_rating_spearman"] = jaffe_rating_correlation(base, runs)
    out = Path(base.out) / f"{base.name}_cv"
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    table = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    table += ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    md = [f"# {base.name}: {k}-fold subject-wise cross-validation", "", *table, "",
          "mean: " + ", ".join(f"{c} {summary['mean'][c]:.4f} (SD {summary['sd'][c]:.4f})" for c in summary["mean"]
                               if c not in ("test_subjects", "test_samples", "test_unusable"))]
    if "jaffe_rating_spearman" in summary:
        md.append(f"\nSpearman(predicted P(posed), raters' mean rating): {summary['jaffe_rating_spearman']:.4f}")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
