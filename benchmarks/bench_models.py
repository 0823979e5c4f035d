"""Speed and memory of every model at its paper input size (CPU here; CUDA when present).

    python benchmarks/bench_models.py [MODEL ...] [--batches 1 4] [--repeats 2] [--amp]

Prints forward and forward+backward clips/second at each batch size and the peak memory (peak
resident set of a fresh process per model on CPU, ``max_memory_allocated`` on CUDA).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from fexa.models import count_parameters, create_model
from fexa.models.flops import PAPER_INPUTS


def _loss(out) -> torch.Tensor:
    if isinstance(out, dict):
        return out["coarse"].sum() + out["negative"].sum()
    if isinstance(out, tuple):
        out = out[0]
    return out.float().sum()


def measure(name: str, batches: list[int], repeats: int, amp: bool) -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = create_model(name).to(device)
    result = {"model": name, "params": count_parameters(model), "device": device}
    for b in batches:
        inputs = tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in PAPER_INPUTS[name](b))
        for mode in ("forward", "forward+backward"):
            train = mode != "forward"
            model.train(train)
            times = []
            for i in range(repeats + 1):  # the first run warms up
                t = time.perf_counter()
                with torch.autocast(device, dtype=torch.bfloat16, enabled=amp), torch.set_grad_enabled(train):
                    out = model(*inputs)
                    if train:
                        _loss(out).backward()
                if device == "cuda":
                    torch.cuda.synchronize()
                if i:
                    times.append(time.perf_counter() - t)
                model.zero_grad(set_to_none=True)
            result[f"{mode} b{b}"] = b / min(times)
    result["peak_mb"] = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
                         else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child process: measure one model, print JSON
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.one:
        print(json.dumps(measure(args.one, args.batches, args.repeats, args.amp)))
        return
    names = args.models or ["former_dfer", "slowonly_r50_heatmap", "qafe_net", "skateformer_face", "tramp_former",
                            "stt", "pcda", "cfc_sp"]
    cols = [f"{m} b{b}" for b in args.batches for m in ("forward", "forward+backward")]
    print(f"{'model':22s} {'params':>12s} " + " ".join(f"{c:>20s}" for c in cols) + f" {'peak MB':>9s}")
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--repeats", str(args.repeats), "--batches",
               *map(str, args.batches)] + (["--amp"] if args.amp else [])
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        print(f"{name:22s} {r['params']:12,d} " + " ".join(f"{r[c]:16.3f} c/s" for c in cols) + f" {r['peak_mb']:9.0f}",
              flush=True)


if __name__ == "__main__":
    main()
