"""Bad settings and label files get one line naming the key or file (and line), the value and what
is allowed; nothing is silently dropped."""

import subprocess
import sys

import pytest

from conftest import DEMO, REPO
from fexa.data.adapters import load_dataset
from fexa.errors import FexaError


@pytest.mark.parametrize("args, message", [
    (["--fps", "-5"], "extract setting fps=-5.0 is not allowed: must be a positive, finite frame rate"),
    (["--fps", "nan"], "extract setting fps=nan is not allowed"),
    (["--crop-size", "0"], "extract setting crop_size=0 is not allowed: must be an integer >= 32"),
    (["--max-faces", "0"], "extract setting max_faces=0 is not allowed: must be >= 1"),
])
def test_bad_extract_settings_are_one_line_errors(tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "fexa", "extract", str(DEMO), "--out", str(tmp_path), *args],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1 and r.stderr.strip() == f"fexa: error: {message}" or message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and not list(tmp_path.iterdir())


def _jaffe(tmp_path, text: str):
    (tmp_path / "labels.csv").write_text(text)
    return load_dataset("jaffe", tmp_path)


def test_label_file_problems_name_file_line_and_what_is_known(tmp_path):
    with pytest.raises(FexaError, match=r"jaffe: .*labels.csv lacks column\(s\) \['expression_code'\]; it has "
                                        r"\['file', 'subject_id', 'expression'\]"):
        _jaffe(tmp_path, "file,subject_id,expression\na.png,KA,HA\n")
    with pytest.raises(FexaError, match=r"labels.csv line 1 is separated by ';', not commas"):
        _jaffe(tmp_path, "file;subject_id;expression_code\na.png;KA;HA\n")
    with pytest.raises(FexaError, match=r"labels.csv line 3: unknown class 'XX' \(1 such rows, lines \[3\]...\); "
                                        r"known: ne, ha, sa"):
        _jaffe(tmp_path, "file,subject_id,expression_code\na.png,KA,HA\nb.png,KA,XX\n")
    table = _jaffe(tmp_path, "file,subject_id,expression_code\na.png,KA,ha\nb.png,KA,Ha\nc.png,KB,NE\n")
    assert list(table["target"]) == [1, 1, 0]  # case does not remove a class


def test_class_names_are_matched_regardless_of_case(tmp_path):
    (tmp_path / "labels.csv").write_text("file,expression\na.png,Happy\nb.png,happy\nc.png, SAD\n")
    assert list(load_dataset("fer2013", tmp_path)["target"]) == [3, 3, 5]
