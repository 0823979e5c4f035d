"""Re-try the mutants of issue 30: each one small plausible bug must fail a default-suite test.

For every mutant the tracked tree (``git ls-files``, as it is on disk now) is copied to a temporary
folder, one exact piece of code is replaced there, and the tests named for it are run in the copy
(``python -m pytest -q -x -m "not slow" TESTS``: the copy's fexa is imported, which is checked).
KILLED: a test failed; SURVIVED: all passed (the tests miss that bug); ERROR: pytest could not run
them (collection error, no test selected, timeout). The same tests are first run once on an
unmutated copy, where they must all pass with none skipped or deselected.

    python scripts/mutation_check.py            # all mutants (a few minutes on 2 cores)
    python scripts/mutation_check.py --list     # what each mutant changes and which tests should kill it
    python scripts/mutation_check.py --only uar_all_classes --only resumable_reversed

Exit status 0 only when the baseline passed and every mutant was KILLED. When the old text of a
mutant is not found exactly once, the code has moved: the mutant must be updated (an error, before
anything runs). Tests that read ../shared/data get it through FEXA_SHARED_DATA (set here to this
checkout's ../shared/data unless already set); without it they skip, and the baseline says so.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 900  # per pytest run


@dataclass(frozen=True)
class Mutant:
    """One bug: ``old`` (found exactly once in ``path``) replaced by ``new``; ``tests`` must fail."""

    name: str
    item: str  # issue 30's item
    path: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids
    what: str  # one line: what is changed


CACHE = "tests/test_cache_identity.py::"
MAPS = "tests/test_checkpoint_mappings.py::"
EYES = "tests/test_eye_event_bounds.py::"
MEASURES = "fexa/analysis/measures.py"
SETTINGS_TESTS = (f"{CACHE}test_an_entry_made_with_other_settings_is_stale[crop_size]",
                  f"{CACHE}test_an_entry_made_with_other_settings_is_redone[crop_size]")


def _eye_bound(name: str, old: str, new: str, test: str) -> Mutant:
    """An item-6 mutant: one bound of fexa/analysis/measures.py moved (``old`` -> ``new``), killed by ``test``."""
    return Mutant(name, "6", MEASURES, old, new, (EYES + test,), f"{old} -> {new}")


MUTANTS: tuple[Mutant, ...] = (
    # 1. content fingerprints
    Mutant("fingerprint_folder_without_sha", "1", "fexa/io/fingerprint.py",
           r'h.update(f"{f.name}\0{f.stat().st_size}\0{file_sha256(f)}\n".encode())',
           r'h.update(f"{f.name}\0{f.stat().st_size}\n".encode())',
           (f"{CACHE}test_a_frame_replaced_by_one_of_the_same_size_redoes_the_entry",),
           "content_fingerprint: a frame folder hashed by its files' names and sizes, not their SHA-256"),
    Mutant("fingerprint_file_by_size", "1", "fexa/io/fingerprint.py",
           'return "sha256:" + file_sha256(path)',
           'return "sha256:" + hashlib.sha256(str(path.stat().st_size).encode()).hexdigest()',
           (f"{CACHE}test_a_file_replaced_by_one_of_the_same_size_redoes_the_entry",),
           "content_fingerprint: a file hashed by its size only"),
    Mutant("fingerprint_file_first_mib", "1", "fexa/io/fingerprint.py",
           'return "sha256:" + file_sha256(path)',
           'return "sha256:" + hashlib.sha256(path.open("rb").read(2**20)).hexdigest()',
           (f"{CACHE}test_a_file_replaced_by_one_of_the_same_size_redoes_the_entry",),
           "content_fingerprint: a file hashed by its first MiB only"),
    # 2. extraction settings
    Mutant("entry_state_ignores_settings", "2", "fexa/extract.py",
           '    if meta.get("settings_digest") != cfg.digest():\n'
           '        return "extracted with other settings or an older fexa"\n',
           "", SETTINGS_TESTS, "entry_state: the settings_digest check deleted"),
    Mutant("settings_without_crop_size", "2", "fexa/extract.py",
           '        d.pop("frame_cache_mb")\n',
           '        d.pop("frame_cache_mb")\n        d.pop("crop_size")\n',
           SETTINGS_TESTS, "ExtractConfig.settings: crop_size left out of the digest"),
    # 3. checkpoint key mappings
    Mutant("vit_norm1_norm2_exchanged", "3", "fexa/models/checkpoints.py",
           r'''    (r"\.layers\.(\d+)\.0\.fn\.norm\.", r".\1.norm1."),
    (r"\.layers\.(\d+)\.0\.fn\.fn\.to_qkv\.", r".\1.attn.qkv."),
    (r"\.layers\.(\d+)\.0\.fn\.fn\.to_out\.0\.", r".\1.attn.proj."),
    (r"\.layers\.(\d+)\.1\.fn\.norm\.", r".\1.norm2."),''',
           r'''    (r"\.layers\.(\d+)\.0\.fn\.norm\.", r".\1.norm2."),
    (r"\.layers\.(\d+)\.0\.fn\.fn\.to_qkv\.", r".\1.attn.qkv."),
    (r"\.layers\.(\d+)\.0\.fn\.fn\.to_out\.0\.", r".\1.attn.proj."),
    (r"\.layers\.(\d+)\.1\.fn\.norm\.", r".\1.norm1."),''',
           (f"{MAPS}test_mapper_follows_the_hand_table[former_dfer]",
            f"{MAPS}test_loaded_tensors_sit_where_the_hand_table_says[former_dfer]",
            f"{MAPS}test_former_dfer_matches_the_reference_forward"),
           "_VIT_LAYER: Former-DFER's pre-attention norm loaded as norm2, its pre-MLP norm as norm1"),
    Mutant("ir_res_layer_1_3_exchanged", "3", "fexa/models/checkpoints.py",
           '            return f"body.{stage}.{flat}.{rest}" if stage < num_stages else None\n',
           '            rest = re.sub(r"^res_layer\\.([13])\\.", lambda m: f"res_layer.{4 - int(m[1])}.", rest)\n'
           '            return f"body.{stage}.{flat}.{rest}" if stage < num_stages else None\n',
           (f"{MAPS}test_mapper_follows_the_hand_table[poster_ir50]",
            f"{MAPS}test_mapper_follows_the_hand_table[insightface_ir]",
            f"{MAPS}test_ir50_matches_the_reference_forward"),
           "map_ir: an IR unit's two 3x3 convs (res_layer.1, res_layer.3) exchanged"),
    Mutant("ir_res_layer_0_4_exchanged", "3", "fexa/models/checkpoints.py",
           '            return f"body.{stage}.{flat}.{rest}" if stage < num_stages else None\n',
           '            rest = re.sub(r"^res_layer\\.([04])\\.", lambda m: f"res_layer.{4 - int(m[1])}.", rest)\n'
           '            return f"body.{stage}.{flat}.{rest}" if stage < num_stages else None\n',
           (f"{MAPS}test_mapper_follows_the_hand_table[poster_ir50]",
            f"{MAPS}test_ir50_matches_the_reference_forward"),
           "map_ir: an IR unit's two BNs (res_layer.0, res_layer.4) exchanged"),
    Mutant("skateformer_norm_1_2_exchanged", "3", "fexa/models/checkpoints.py",
           '        return f"stages.{stage}.{index}.{rest}"\n',
           '        rest = re.sub(r"norm_([12])", lambda m: f"norm_{3 - int(m[1])}", rest)\n'
           '        return f"stages.{stage}.{index}.{rest}"\n',
           (f"{MAPS}test_mapper_follows_the_hand_table[tramp_skateformer]",
            f"{MAPS}test_loaded_tensors_sit_where_the_hand_table_says[tramp_skateformer]"),
           "map_tramp_skateformer: a block's norm_1 and norm_2 exchanged"),
    Mutant("skateformer_block_index", "3", "fexa/models/checkpoints.py",
           'index = 0 if part == "downsample" else block + (1 if stage > 0 else 0)',
           'index = 0 if part == "downsample" else block',
           (f"{MAPS}test_mapper_follows_the_hand_table[tramp_skateformer]",),
           "map_tramp_skateformer: block index off by one (the downsample not counted)"),
    # 4. metrics
    Mutant("uar_all_classes", "4", "fexa/metrics/__init__.py",
           'return float(np.nanmean(_recall(_counts(y_true, y_pred, "uar", num_classes))))',
           'return float(np.mean(np.nan_to_num(_recall(_counts(y_true, y_pred, "uar", num_classes)))))',
           ("tests/test_metrics.py::test_uar_and_macro_f1_over_classes_absent_from_the_test_set",),
           "uar: mean over all num_classes, a class absent from y_true counted with recall 0"),
    Mutant("macro_f1_all_classes", "4", "fexa/metrics/__init__.py",
           'return float(np.nanmean(_f1(_counts(y_true, y_pred, "macro_f1", num_classes))))',
           'return float(np.mean(np.nan_to_num(_f1(_counts(y_true, y_pred, "macro_f1", num_classes)))))',
           ("tests/test_metrics.py::test_uar_and_macro_f1_over_classes_absent_from_the_test_set",),
           "macro_f1: mean over all num_classes, a class neither true nor predicted counted with F1 0"),
    # 5. resume
    Mutant("resumable_reversed", "5", "fexa/train/checkpoint.py",
           'RESUMABLE = ("last", "previous")', 'RESUMABLE = ("previous", "last")',
           ("tests/test_resume.py::test_resume_starts_after_last_and_from_previous_only_when_last_is_damaged",),
           "RESUMABLE: --resume tries previous before last"),
    # 6. eye events (the bounds of fexa.analysis.measures)
    _eye_bound("blink_max_0.4", "BLINK_DURATION = (0.05, 0.5)", "BLINK_DURATION = (0.05, 0.4)",
                  "test_the_longest_blink"),
    _eye_bound("blink_max_0.6", "BLINK_DURATION = (0.05, 0.5)", "BLINK_DURATION = (0.05, 0.6)",
                  "test_the_longest_blink"),
    _eye_bound("blink_min_0.04", "BLINK_DURATION = (0.05, 0.5)", "BLINK_DURATION = (0.04, 0.5)",
                  "test_the_shortest_blink_and_wink"),
    _eye_bound("blink_min_0.06", "BLINK_DURATION = (0.05, 0.5)", "BLINK_DURATION = (0.06, 0.5)",
                  "test_the_shortest_blink_and_wink"),
    _eye_bound("closed_0.4", "BLINK_CLOSED = 0.5", "BLINK_CLOSED = 0.4", "test_how_deep_a_closure_must_be"),
    _eye_bound("closed_0.6", "BLINK_CLOSED = 0.5", "BLINK_CLOSED = 0.6", "test_how_deep_a_closure_must_be"),
    _eye_bound("reopened_0.24", "BLINK_REOPENED = 0.3", "BLINK_REOPENED = 0.24", "test_how_far_an_eye_must_reopen"),
    _eye_bound("reopened_0.36", "BLINK_REOPENED = 0.3", "BLINK_REOPENED = 0.36", "test_how_far_an_eye_must_reopen"),
    _eye_bound("bridge_0.16", "BLINK_BRIDGE = 0.2", "BLINK_BRIDGE = 0.16",
                  "test_half_open_stretches_and_gaps_shorter_than_the_bridge"),
    _eye_bound("bridge_0.24", "BLINK_BRIDGE = 0.2", "BLINK_BRIDGE = 0.24",
                  "test_half_open_stretches_and_gaps_shorter_than_the_bridge"),
    _eye_bound("wink_max_1.2", "WINK_MAX = 1.5", "WINK_MAX = 1.2", "test_the_longest_wink"),
    _eye_bound("wink_max_1.8", "WINK_MAX = 1.5", "WINK_MAX = 1.8", "test_the_longest_wink"),
    _eye_bound("wink_shut_0.6", "WINK_SHUT = 0.75", "WINK_SHUT = 0.6", "test_how_shut_a_winking_eye_must_be"),
    _eye_bound("wink_shut_0.9", "WINK_SHUT = 0.75", "WINK_SHUT = 0.9", "test_how_shut_a_winking_eye_must_be"),
    _eye_bound("min_fps_blinks_8", "MIN_FPS_BLINKS = 10.0", "MIN_FPS_BLINKS = 8.0",
                  "test_the_lowest_frame_rate_for_blinks"),
    _eye_bound("min_fps_blinks_12", "MIN_FPS_BLINKS = 10.0", "MIN_FPS_BLINKS = 12.0",
                  "test_the_lowest_frame_rate_for_blinks"),
    _eye_bound("min_blink_time_8", "MIN_BLINK_TIME = 10.0", "MIN_BLINK_TIME = 8.0",
                  "test_the_shortest_time_for_a_blink_rate"),
    _eye_bound("min_blink_time_12", "MIN_BLINK_TIME = 10.0", "MIN_BLINK_TIME = 12.0",
                  "test_the_shortest_time_for_a_blink_rate"),
    _eye_bound("open_level_72", "np.nanpercentile(a, 90)", "np.nanpercentile(a, 72)",
                  "test_the_open_level_is_the_90th_percentile"),
    _eye_bound("open_level_99", "np.nanpercentile(a, 90)", "np.nanpercentile(a, 99)",
                  "test_the_open_level_is_the_90th_percentile"),
    Mutant("seconds_without_plus_one", "6", MEASURES, "round((span[1] - span[0] + 1) * dt, 6)",
           "round((span[1] - span[0]) * dt, 6)", (EYES + "test_the_longest_blink",),
           "_seconds: a length from the first closed frame (no + 1)"),
    Mutant("seconds_without_rounding", "6", MEASURES, "round((span[1] - span[0] + 1) * dt, 6)",
           "(span[1] - span[0] + 1) * dt",
           (EYES + "test_a_length_exactly_at_a_bound_is_read_alike_at_every_frame_rate",),
           "_seconds: a length not rounded to the microsecond (a bound read by the timestamps' rounding)"),
    Mutant("one_eye_blink_depth", "6", MEASURES, "mean[s0:e0].max() > closed", "mean[s0:e0].max() > reopened",
           (EYES + "test_how_deep_a_closure_must_be",),
           "detect_eye_events: a one-eye blink needs the mean closure above reopened, not closed"),
    Mutant("held_wink_depth", "6", MEASURES, "own[~together[s0:e0]].max() >= shut",
           "own[~together[s0:e0]].max() >= closed", (EYES + "test_how_shut_a_winking_eye_must_be",),
           "detect_eye_events: a held wink needs the eye closed, not shut"),
    Mutant("cut_blink_counted", "6", MEASURES, "        if not cut and blink[0] <= length <= blink[1]:",
           "        if blink[0] <= length <= blink[1]:", (EYES + "test_the_longest_blink",),
           "detect_eye_events: a both-eye blink cut by the clip's ends counted"),
    Mutant("cut_wink_skipped_at_any_length", "6", MEASURES, "(cut and length <= wink_max)", "cut",
           (EYES + "test_the_longest_wink",),
           "detect_eye_events: a cut one-eye episode skipped however long (not a one-sided closure)"),
    Mutant("face_gap_bridged_twice_as_long", "6", MEASURES, "(e0 - s0) * dt < bridge", "(e0 - s0) * dt < 2 * bridge",
           (EYES + "test_half_open_stretches_and_gaps_shorter_than_the_bridge",),
           "closure_signal: face-less gaps up to twice the bridge interpolated"),
    Mutant("reopened_frames_bridged", "6", MEASURES, " and not is_open[gap].any() and ", " and ",
           (EYES + "test_how_far_an_eye_must_reopen",),
           "closure_episodes: a gap with reopened frames bridged"),
    Mutant("staggered_blink_twice", "6", MEASURES,
           "                    together[max(s0 - 1, 0):e0 + 1] = True  # the other eye's overlapping episode is this blink\n",
           "", (EYES + "test_a_staggered_blink_is_one_blink",),
           "detect_eye_events: a one-eye blink does not mark its frames, so the other eye's episode counts again"),
    # also: paper tables, BMC, QAFE-Net, flipped landmarks
    Mutant("reproduce_row_overrides_dropped", "also", "fexa/train/reproduce.py",
           'sets, into = [*row.sets, *column.get("set", [])], spec.get("into", "")',
           'sets, into = [*column.get("set", [])], spec.get("into", "")',
           ("tests/test_reproduce.py::test_every_row_resolves_to_its_model_dataset_and_overrides",),
           "Table.cells: a row's --set overrides left out of its runs"),
    Mutant("bmc_arguments_swapped", "also", "fexa/losses/regression.py",
           "pred, target = pred.reshape(-1, 1).float(), target.reshape(-1).float()",
           "pred, target = target.reshape(-1, 1).float(), pred.reshape(-1).float()",
           ("tests/test_losses.py::test_bmc_prediction_comes_first",),
           "bmc_loss: prediction and target exchanged (TraMP-Former's criterion(label, pred))"),
    Mutant("qafe_position_embedding_wrong_stream", "also", "fexa/models/qafe_net.py",
           'if self.cfg.spe_on == "rgb":', 'if self.cfg.spe_on != "rgb":',
           ("tests/test_models.py::test_qafe_net_fusion_variants_follow_their_equations[{}]",
            "tests/test_models.py::test_qafe_net_fusion_variants_follow_their_equations[{'spe_on': 'heatmap'}]"),
           "QAFENet.fuse: the subclip position embedding added to the other stream"),
    Mutant("flip_without_mirror", "also", "fexa/data/samples.py",
           "            if self.mirror is not None:  # the subject's left points become right points\n"
           "                kp = kp[self.mirror]\n",
           "", ("tests/test_samples.py::test_flipped_landmarks_follow_the_flipped_image",),
           "FaceSamples._image: flipped landmarks keep their indices (left points not moved to the right's)"),
)


def copy_tree(dest: Path) -> None:
    """The tracked files of this checkout, as they are on disk, into ``dest``."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    for rel in files.decode().split("\0"):
        src = REPO / rel
        if rel and src.is_file():  # a tracked file deleted in the work tree is left out, as on disk
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def mutated(mutant: Mutant, root: Path) -> str:
    """The text of the mutant's file under ``root`` with its old text, which must occur exactly once, replaced."""
    text = (root / mutant.path).read_text()
    if text.count(mutant.old) != 1:
        raise SystemExit(f"mutant {mutant.name}: its old text occurs {text.count(mutant.old)} times in "
                         f"{mutant.path} (must be once: the code moved, update the mutant)\n{mutant.old}")
    return text.replace(mutant.old, mutant.new)


def copy_env() -> dict[str, str]:
    """The environment of the copies' pytest runs: no bytecode written, and the shared data found."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    shared = REPO.parent / "shared" / "data"  # what tests/conftest.py finds from this checkout
    if "FEXA_SHARED_DATA" not in env and shared.is_dir():
        env["FEXA_SHARED_DATA"] = str(shared)
    return env


def run_tests(root: Path, tests: list[str], stop_first: bool) -> tuple[int, str]:
    """(pytest's exit status, its output) for ``tests`` run in the copy at ``root``; 124 on timeout."""
    env = copy_env()
    found = subprocess.run([sys.executable, "-c", "import fexa; print(fexa.__file__)"], cwd=root, env=env,
                           capture_output=True, text=True)
    if not Path(found.stdout.strip()).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"the copy at {root} imports another fexa: {found.stdout.strip() or found.stderr}")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *(["-x"] * stop_first),
           *tests]
    try:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {TIMEOUT_S} s"
    return done.returncode, done.stdout + done.stderr


def first_failure(output: str) -> str:
    """The node id of the first test pytest's summary lists as failed (or errored)."""
    m = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", output, re.MULTILINE)
    return m[1] if m else ""


def summary(output: str) -> str:
    """pytest's closing line ("3 passed, 1 skipped in 2.10s"), or the output's last line."""
    lines = re.findall(r"^.* in [\d.]+s(?: \([\d:]+\))?$", output, re.MULTILINE) or output.strip().splitlines() or [""]
    return lines[-1].strip("= ")


def baseline(mutants: list[Mutant]) -> bool:
    """Run every listed test once on an unmutated copy: all must pass, none skipped or deselected."""
    tests = list(dict.fromkeys(t for m in mutants for t in m.tests))
    with tempfile.TemporaryDirectory(prefix="fexa_mutation_") as tmp:
        copy_tree(Path(tmp))
        rc, out = run_tests(Path(tmp), tests, stop_first=False)
    unchecked = re.findall(r"\d+ (?:skipped|deselected)", summary(out))
    print(f"baseline: {len(tests)} test ids on the unmutated tree: {summary(out)}", flush=True)
    if rc != 0 or unchecked:
        why = (f"pytest exit status {rc}" if rc else
               f"{', '.join(unchecked)}: a mutant could survive unseen (skipped: is the shared data there?)")
        print(f"BASELINE FAILED ({why})\n{out[-6000:]}")
        return False
    return True


def check(mutant: Mutant) -> tuple[str, str]:
    """(KILLED | SURVIVED | ERROR, the failing test or pytest's last line) for one mutant in a fresh copy."""
    with tempfile.TemporaryDirectory(prefix=f"fexa_mutant_{mutant.name}_") as tmp:
        root = Path(tmp)
        copy_tree(root)
        (root / mutant.path).write_text(mutated(mutant, root))
        rc, out = run_tests(root, list(mutant.tests), stop_first=True)
    last = summary(out)
    if rc == 1:
        return "KILLED", first_failure(out) or last
    if rc == 0:
        return "SURVIVED", last
    print(f"--- {mutant.name}: pytest exit status {rc}\n{out[-3000:]}")
    return "ERROR", f"exit status {rc}: {last}"


def main(argv: list[str] | None = None) -> int:
    """Check that every mutant still applies, run the baseline, then each mutant; 0 only if all were killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutant (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    names = [m.name for m in MUTANTS]
    if len(set(names)) != len(names):
        raise SystemExit("two mutants share a name")
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"--only: unknown mutant(s) {', '.join(unknown)}; see --list")
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.name}  (item {m.item}, {m.path})\n    {m.what}\n    " + "\n    ".join(m.tests))
        return 0
    for m in mutants:  # every mutant still applies, before anything runs
        mutated(m, REPO)
    if not baseline(mutants):
        return 1
    rows, start = [], time.monotonic()
    for k, m in enumerate(mutants, 1):
        result, detail = check(m)
        rows.append((m.item, m.name, result, detail))
        print(f"[{k}/{len(mutants)}] {m.name}: {result}", file=sys.stderr, flush=True)
    print(f"\n{'item':>4}  {'mutant':<38} {'result':<8} killed by / pytest's last line")
    for row in rows:
        print(f"{row[0]:>4}  {row[1]:<38} {row[2]:<8} {row[3]}")
    bad = [r[1] for r in rows if r[2] != "KILLED"]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} mutants killed in {time.monotonic() - start:.0f} s"
          + (f"; not killed: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
