"""``fexa`` subcommands. Errors in the user's input print one line and exit 1 (``--debug`` shows
the traceback)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fexa.cli import add_face_backend, add_folder_as

import fexa
from fexa.errors import FexaError, os_error_reason


def _extract(args: argparse.Namespace) -> int:
    from fexa.extract import ExtractConfig, extract_many, parse_shard
    from fexa.face.detector import TrackerConfig

    cfg = ExtractConfig(
        crop_size=args.crop_size, rotate=not args.no_rotate, fps=args.fps, write_crops=not args.no_crops,
        max_gap=args.max_gap,
        tracker=TrackerConfig(max_faces=args.max_faces, detect_every=args.detect_every, backend=args.face_backend,
                              device=args.device),
    )
    df = extract_many(args.inputs, args.out, cfg, workers=args.workers, shard=parse_shard(args.shard),
                      progress=not args.quiet, folder_as=args.folder_as, streams=args.streams)
    if args.store:
        from fexa.data.store import StoreConfig, ensure_stores
        from fexa.extract import USABLE_STATUSES

        usable = [Path(args.out) / i for i in df.loc[df["status"].isin(USABLE_STATUSES), "id"]]
        for entry, why in ensure_stores(usable, StoreConfig(args.store_quality), args.workers, not args.quiet).items():
            print(f"  store error  {Path(entry).name}: {why}", file=sys.stderr)
            df.loc[df["id"] == Path(entry).name, "status"] = "error"
    counts = df["status"].value_counts().to_dict()
    print(f"{len(df)} entries in {args.out}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
          + f"  (manifest: {Path(args.out) / 'manifest.csv'})")
    for row in df[df["status"] == "error"].itertuples():
        print(f"  error  {row.id}: {row.error}", file=sys.stderr)
    return 1 if counts.get("error") else 0


def _show(args: argparse.Namespace) -> int:
    from fexa.viz import show_entry

    for entry in args.entries:
        written = show_entry(entry, args.out, progress=not args.quiet)
        print("\n".join(f"{k:13s}{v}" for k, v in written.items()))
    return 0


def _import_landmarks(args: argparse.Namespace) -> int:
    from fexa.face.importers import load_insightface, load_openface_csv
    from fexa.io.atomic import atomic_dir, write_json
    from fexa.extract import file_checksums, input_ids, write_manifest
    from fexa.io.fingerprint import content_fingerprint

    paths = [Path(p) for p in args.files]
    for path, ident in zip(paths, input_ids(paths)):
        if args.format == "openface":
            track = load_openface_csv(path, args.crop_size)
        else:
            track = load_insightface(path, args.fps, args.crop_size)
        with atomic_dir(Path(args.out) / ident) as tmp:
            track.save(tmp / "track.npz")
            write_json(tmp / "meta.json", {
                "id": ident, "path": str(path), "status": "ok", "frames": track.num_frames,
                "face_frames": int(track.valid.sum()), "fps": track.fps, "error": "",
                "imported_from": args.format, "layout": track.layout, "fexa_version": fexa.__version__,
                "fingerprint": content_fingerprint(path), "files": file_checksums(tmp),
            })
    df = write_manifest(Path(args.out))
    print(f"imported {len(paths)} file(s); {len(df)} entries in {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fexa", description="Facial EXpression Analysis: face videos to expression "
                                "labels and clinical expression-quality scores.")
    p.add_argument("--version", action="version", version=f"fexa {fexa.__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("extract", help="track faces and cache landmarks, pose and aligned crops",
                       description="Detect and track faces in videos, images or folders of frames; write "
                       "OUT/<id>/{track.npz,crops.mp4,meta.json} and OUT/manifest.csv. Finished inputs are "
                       "skipped on a rerun.")
    e.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video/image files, folders of frames, or folders holding videos")
    e.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_folder_as(e)
    e.add_argument("--workers", type=int, default=1, metavar="N", help="parallel processes (default 1)")
    e.add_argument("--shard", metavar="K/N", help="process only inputs i with i %% N == K (cluster job arrays)")
    e.add_argument("--crop-size", type=int, default=256, help="aligned crop size in pixels (default 256)")
    e.add_argument("--no-rotate", action="store_true", help="upright crops: do not level the eyes")
    e.add_argument("--no-crops", action="store_true", help="do not write crops.mp4")
    e.add_argument("--fps", type=float, help="frame rate of folders of frames (default 30)")
    e.add_argument("--max-faces", type=int, default=5, help="faces tracked at once (default 5)")
    e.add_argument("--detect-every", type=int, default=10, help="run the face detector every N frames (default 10)")
    e.add_argument("--max-gap", type=int, default=5, help="fill face losses of up to N frames (default 5)")
    add_face_backend(e)
    e.add_argument("--streams", type=int, default=1, metavar="S",
                   help="torch face backend: inputs tracked at once by one process, their face models run in shared "
                   "batches (on a GPU: e.g. 32; default 1)")
    e.add_argument("--device", default="cpu", help="where the torch face backend's models run: cpu (default), cuda")
    e.add_argument("--store", action="store_true",
                   help="also build each entry's training store (store.bin: JPEG frames + landmark arrays)")
    e.add_argument("--store-quality", type=int, default=90, metavar="Q", help="JPEG quality of the store (default 90)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_extract)

    s = sub.add_parser("show", help="overlay video and PNG sheets of extracted entries",
                       description="Write overlay.mp4 (landmarks by region, face boxes with track ids, lost "
                       "frames marked), heatmaps.png and trajectories.png for each entry.")
    s.add_argument("entries", nargs="+", metavar="ENTRY", help="entry folders, e.g. OUT/<id>")
    s.add_argument("--out", metavar="DIR", help="where to write (default: the entry folder)")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=_show)

    i = sub.add_parser("import-landmarks", help="turn insightface or OpenFace landmark files into entries",
                       description="Import precomputed landmarks (insightface 2d106 [T,106,2] or released "
                       "[T,73,2] .npy files in 256x256 crop pixels; OpenFace 2 CSV) as fexa entries.")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--format", required=True, choices=["insightface", "openface"])
    i.add_argument("--out", required=True, metavar="DIR")
    i.add_argument("--fps", type=float, default=30.0, help="frame rate for .npy files (default 30)")
    i.add_argument("--crop-size", type=int, default=256)
    i.set_defaults(func=_import_landmarks)

    from fexa.cli import analyze, baseline, bench, cascade, compare, models, reproduce, train, weights

    analyze.add_parser(sub)
    compare.add_parser(sub)
    cascade.add_parser(sub)
    bench.add_parser(sub)
    baseline.add_parser(sub)
    models.add_parser(sub)
    reproduce.add_parser(sub)
    train.add_parsers(sub)
    weights.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FexaError as e:
        if args.debug:
            raise
        print(f"fexa: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fexa: interrupted (finished entries are kept; rerun to continue)", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a read-only or misnamed output folder: the user's to fix
        if args.debug:
            raise
        print(f"fexa: error: {os_error_reason(e, getattr(args, 'out', None))}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - one line for users, traceback with --debug
        if args.debug:
            raise
        print(f"fexa: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
