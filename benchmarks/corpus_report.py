"""Run the test corpus of real and malformed inputs (tests/corpus.py) through ``fexa extract`` and
``fexa analyze`` and print one Markdown row per input: statuses, frames and the one-line reason.

    python benchmarks/corpus_report.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from corpus import make_corpus  # noqa: E402

from fexa.analysis.analyzer import Analyzer  # noqa: E402
from fexa.extract import USABLE_STATUSES, extract_many  # noqa: E402
from fexa.io.fingerprint import entry_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="keep the inputs and results here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        cases = make_corpus(root / "inputs")
        manifest = extract_many([c.path for c in cases], root / "extract", progress=False).set_index("id")
        summary = Analyzer(cache=root / "extract").analyze_many([c.path for c in cases], root / "analysis")
        summary = summary.set_index("id")
        print("| input | extract | frames decoded / expected | analyze | reason or warnings |")
        print("|---|---|---|---|---|")
        for c in cases:
            ident = entry_name(c.path)
            m, s = manifest.loc[ident], summary.loc[ident]
            why = m["error"] or s["error"] or str(s.get("warnings", "") or "")
            why = why.replace(str(root), "…").replace("|", "\\|")
            print(f"| {c.name} | {m['status']} | {m['frames_decoded']} / {m['frames_expected']} | {s['status']} | "
                  f"{why[:220]} |")
        clean = int(summary["status"].isin(USABLE_STATUSES).sum())
        print(f"\n{len(cases)} inputs: {clean} analysed ({int((summary['status'] == 'partial').sum())} partial), "
              f"{len(cases) - clean} refused with a one-line reason; no traceback, summary written.")


if __name__ == "__main__":
    main()
