"""MOS study folders, the votes database rules and the `esrgan mos` CLI (esrgan.mos.study, esrgan.mos.db)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from mos_support import IMAGE_NAMES, METHOD_NAMES, hr_pixels, make_folders, make_study
from PIL import Image

from esrgan.cli import main
from esrgan.errors import EsrganError
from esrgan.mos import create_study, load_study
from esrgan.mos import db as mosdb
from esrgan.mos.study import rater_order


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_create_study_items_and_blind_files(tmp_path):
    study = make_study(tmp_path)
    assert study.methods == (*METHOD_NAMES, "nearest", "hr")
    assert study.images == IMAGE_NAMES
    assert len(study.items) == 3 * 4
    assert {(it.image, it.method) for it in study.items} == {
        (i, m) for i in IMAGE_NAMES for m in study.methods
    }
    assert len(study.calibration) == 2 * 2
    assert sorted(it.fixed_score for it in study.calibration) == [1, 1, 5, 5]
    files = sorted(p.name for p in (study.root / "images").iterdir())
    ids = sorted(f"{it.id}.png" for it in (*study.items, *study.calibration))
    assert files == ids  # nothing but the opaque ids
    for name in files:
        assert len(name) == 16 + 4 and all(c in "0123456789abcdef" for c in name[:16])
        im = Image.open(study.root / "images" / name)
        assert im.format == "PNG" and im.mode == "RGB"
        assert not im.info.keys() - {"dpi", "gamma"}  # no text chunks, ICC profile or EXIF
    assert {p.name for p in study.root.iterdir()} == {"study.json", "votes.sqlite", "images"}


def test_create_study_pixels(tmp_path):
    study = make_study(tmp_path)
    data = tmp_path / "data"
    by = {(it.image, it.method): study.image_path(it.id) for it in study.items}
    hr = hr_pixels(1)
    assert np.array_equal(_pixels(by[("bird", "hr")]), hr)
    assert np.array_equal(_pixels(by[("bird", "ESRGAN")]), _pixels(data / "ESRGAN" / "bird_out.png"))
    assert np.array_equal(_pixels(by[("bird", "SRGAN")]), _pixels(data / "SRGAN" / "bird_rlt.png"))
    # nearest from the HR: MATLAB bicubic ×1/4, then every LR pixel repeated 4×4.
    from esrgan.ops.matlab_resize import downscale_uint8

    lr = downscale_uint8(hr, 4)
    nearest = _pixels(by[("bird", "nearest")])
    assert np.array_equal(nearest, np.repeat(np.repeat(lr, 4, 0), 4, 1))
    # calibration versions of an image are pixel-identical copies of its rated reference versions
    for it in study.calibration:
        assert np.array_equal(_pixels(study.image_path(it.id)), _pixels(by[(it.image, it.method)]))


def test_nearest_from_lr_folder(tmp_path):
    study = make_study(tmp_path, nearest_from=tmp_path / "data" / "lr")
    item = next(it for it in study.items if it.image == "baby" and it.method == "nearest")
    lr = _pixels(tmp_path / "data" / "lr" / "babyx4.png")
    assert np.array_equal(_pixels(study.image_path(item.id)), np.repeat(np.repeat(lr, 4, 0), 4, 1))
    assert json.loads((study.root / "study.json").read_text())["sources"]["nearest_from"].endswith("lr")


def test_separate_calibration_images(tmp_path):
    folders = make_folders(tmp_path / "data")
    calib = tmp_path / "calib"
    calib.mkdir()
    Image.fromarray(hr_pixels(9, 36, 30)).save(calib / "other.png")  # mod-cropped to 36×28
    study = create_study(
        tmp_path / "study",
        {m: folders[m] for m in METHOD_NAMES},
        folders["hr"],
        calibration_hr=calib,
        calibration_count=5,
    )
    assert {it.image for it in study.calibration} == {"other"}
    hr_item = next(it for it in study.calibration if it.fixed_score == 5)
    assert _pixels(study.image_path(hr_item.id)).shape == (36, 28, 3)


def test_unmatched_files_are_listed(tmp_path):
    folders = make_folders(tmp_path / "data")
    Image.fromarray(hr_pixels(0)).save(folders["SRGAN"] / "zebra_rlt.png")
    (folders["ESRGAN"] / "bird_out.png").unlink()
    with pytest.raises(EsrganError, match=r"--method SRGAN=.*zebra_rlt\.png"):
        create_study(tmp_path / "s1", {"SRGAN": folders["SRGAN"]}, folders["hr"])
    with pytest.raises(EsrganError, match=r"--method ESRGAN=.*no SR result for 1 HR image.*bird"):
        create_study(tmp_path / "s2", {"ESRGAN": folders["ESRGAN"]}, folders["hr"])
    (folders["SRGAN"] / "zebra_rlt.png").unlink()
    (folders["lr"] / "birdx4.png").unlink()
    with pytest.raises(EsrganError, match=r"--nearest-from .*no LR file .*bird"):
        create_study(tmp_path / "s3", {"SRGAN": folders["SRGAN"]}, folders["hr"], nearest_from=folders["lr"])
    # nothing is left behind by a failed create
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_refusals(tmp_path):
    folders = make_folders(tmp_path / "data")
    methods = {"ESRGAN": folders["ESRGAN"]}
    with pytest.raises(EsrganError, match="reserved"):
        create_study(tmp_path / "s", {"HR": folders["ESRGAN"]}, folders["hr"])
    with pytest.raises(EsrganError, match="clash"):
        create_study(tmp_path / "s", {"esrgan": folders["ESRGAN"], "ESRGAN": folders["SRGAN"]}, folders["hr"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(EsrganError, match="not an empty folder"):
        create_study(tmp_path / "full", methods, folders["hr"])
    # a result of another size would tell raters which method made it
    Image.fromarray(hr_pixels(0, 28, 24)).save(folders["SRGAN"] / "baby_rlt.png")
    with pytest.raises(EsrganError, match="all versions of an image must have one size"):
        create_study(tmp_path / "s", {**methods, "SRGAN": folders["SRGAN"]}, folders["hr"])
    with pytest.raises(EsrganError, match="not a multiple of the scale 5"):
        create_study(tmp_path / "s", methods, folders["hr"], scale=5)
    with pytest.raises(EsrganError, match="not a MOS study folder"):
        load_study(tmp_path / "data")


def test_rater_order_is_a_seeded_permutation(tmp_path):
    study = make_study(tmp_path)
    a1, a2, b = rater_order(study, "aaaa"), rater_order(study, "aaaa"), rater_order(study, "bbbb")
    assert a1 == a2 and a1 != b
    assert sorted(a1) == sorted(it.id for it in study.items)


# --------------------------------------------------------------------------------------------------
# votes database


def test_vote_rules_and_durability(tmp_path):
    study = make_study(tmp_path)
    conn = mosdb.connect(study.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    order = rater_order(study, "r1")
    rater = mosdb.create_rater(conn, "Ann", rater_id="r1", token="ABCD-EFGH-JKMN", order=order)
    with pytest.raises(mosdb.NameTaken):
        mosdb.create_rater(conn, "ann", rater_id="r2", token="x", order=order)
    assert mosdb.token_matches(rater, "abcdefghjkmn") and not mosdb.token_matches(rater, "ABCD-EFGH-JKMP")
    with pytest.raises(mosdb.VoteRefused, match="calibration"):
        mosdb.cast_vote(conn, rater, order[0], 3)
    mosdb.mark_calibrated(conn, rater.id)
    with pytest.raises(mosdb.VoteRefused, match="in order"):
        mosdb.cast_vote(conn, rater, order[1], 3)
    for bad in (0, 6, "3", 2.0, True):
        with pytest.raises(mosdb.VoteRefused, match="integer"):
            mosdb.cast_vote(conn, rater, order[0], bad)
    p = mosdb.cast_vote(conn, rater, order[0], 3)
    assert (p.done, p.total, p.next, p.latest) == (1, 12, order[1], (order[0], 3))
    mosdb.cast_vote(conn, rater, order[1], 4)
    mosdb.cast_vote(conn, rater, order[1], 2)  # the latest vote may change
    with pytest.raises(mosdb.VoteRefused, match="latest"):
        mosdb.cast_vote(conn, rater, order[0], 5)  # an earlier one may not
    conn.close()
    # A second, independent connection (another process after a restart) sees every committed vote.
    raw = sqlite3.connect(study.db_path)
    rows = raw.execute("SELECT item_id, score, changes FROM votes ORDER BY seq").fetchall()
    assert rows == [(order[0], 3, 0), (order[1], 2, 1)]
    with pytest.raises(sqlite3.IntegrityError):  # the schema itself refuses out-of-range scores
        raw.execute("INSERT INTO votes (rater_id, item_id, score, voted_at) VALUES ('r1', 'x', 6, 'now')")
    raw.close()


# --------------------------------------------------------------------------------------------------
# CLI


def test_cli_create_and_report(tmp_path, capsys):
    folders = make_folders(tmp_path / "data")
    study_dir = tmp_path / "study"
    args = ["mos", "create", str(study_dir), "--hr", str(folders["hr"]), "--calibration", "1", "--seed", "5"]
    args += [f"--method={m}={folders[m]}" for m in METHOD_NAMES]
    assert main(args) == 0
    assert "3 images × 4 methods" in capsys.readouterr().out
    # no votes yet: a one-line error, exit status 2
    assert main(["mos", "report", str(study_dir), "-o", str(tmp_path / "out")]) == 2
    assert "no votes yet" in capsys.readouterr().err
    study = load_study(study_dir)
    conn = mosdb.connect(study.db_path)
    for i, name in enumerate(("Ann", "Bob")):
        rater = mosdb.create_rater(conn, name, rater_id=f"r{i}", token="T", order=rater_order(study, f"r{i}"))
        mosdb.mark_calibrated(conn, rater.id)
        for item_id in rater.order:
            method = study.item(item_id).method
            mosdb.cast_vote(conn, rater, item_id, {"nearest": 1, "hr": 5, "ESRGAN": 4, "SRGAN": 3}[method])
    conn.close()
    out = tmp_path / "out"
    assert main(["mos", "report", str(study_dir), "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [m["mean"] for m in summary["mos"]] == [4.0, 3.0, 1.0, 5.0]
    assert summary["calibration"][0]["ok"] is True
    assert (out / "mos_distribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| ESRGAN | 4.000 |" in md and "Krippendorff" in md
    assert main(["mos", "report", str(study_dir), "-o", str(out)]) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(["mos", "create", str(study_dir), "--hr", str(folders["hr"]), "--method", "X=nowhere"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["mos", "serve", str(tmp_path / "data")]) == 2
    assert "not a MOS study folder" in capsys.readouterr().err
