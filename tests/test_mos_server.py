"""The MOS rating web app (esrgan.mos.server) through Flask's test client, and a real server process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from mos_support import IMAGE_NAMES, METHOD_NAMES, make_study

pytest.importorskip("flask")

from esrgan.mos import db as mosdb  # noqa: E402
from esrgan.mos.server import create_app  # noqa: E402


@pytest.fixture()
def study(tmp_path):
    return make_study(tmp_path)


@pytest.fixture()
def client(study):
    return create_app(study).test_client()


def register(client, name, *, calibrate=True):
    r = client.post("/api/raters", json={"name": name})
    assert r.status_code == 201, r.get_json()
    data = r.get_json()
    headers = {"X-Rater-Token": data["token"]}
    if calibrate:
        assert (
            client.post(f"/api/raters/{data['rater']}/calibration", json={}, headers=headers).status_code
            == 200
        )
    return data["rater"], headers


def state(client, rater, headers):
    r = client.get(f"/api/raters/{rater}", headers=headers)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def vote(client, rater, headers, item, score):
    return client.post(f"/api/raters/{rater}/votes", json={"item": item, "score": score}, headers=headers)


def test_full_session(client, study):
    rater, headers = register(client, "Ann", calibrate=False)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", headers["X-Rater-Token"])
    s = state(client, rater, headers)
    assert (s["name"], s["calibrated"], s["done"], s["total"], s["latest"]) == ("Ann", False, 0, 12, None)
    # calibration: one pair per example image, bad end (1) first, ids only
    assert len(s["calibration"]) == 2
    calib = {it.id: it for it in study.calibration}
    for pair in s["calibration"]:
        assert [e["score"] for e in pair] == [1, 5]
        assert [calib[e["item"]].method for e in pair] == ["nearest", "hr"]
    r = vote(client, rater, headers, s["next"], 3)
    assert r.status_code == 409 and "calibration" in r.get_json()["error"]  # calibration comes first
    r = client.post(f"/api/raters/{rater}/calibration", json={}, headers=headers)
    assert r.status_code == 200 and r.get_json()["calibrated"] is True
    seen = []
    while s["next"] is not None:
        item = s["next"]
        img = client.get(f"/images/{item}")
        assert img.status_code == 200 and img.mimetype == "image/png"
        assert img.data == study.image_path(item).read_bytes()
        r = vote(client, rater, headers, item, 1 + len(seen) % 5)
        assert r.status_code == 200, r.get_json()
        s = r.get_json()
        seen.append(item)
        assert (s["done"], s["latest"]) == (len(seen), {"item": item, "score": 1 + (len(seen) - 1) % 5})
    assert sorted(seen) == sorted(it.id for it in study.items)
    votes = client.get(f"/api/raters/{rater}/votes", headers=headers).get_json()["votes"]
    assert [v["item"] for v in votes] == seen


def test_orders_differ_per_rater_and_resume_keeps_it(client, study):
    a, ha = register(client, "Ann")
    b, hb = register(client, "Bob")
    first_a = state(client, a, ha)["next"]
    assert vote(client, a, ha, first_a, 4).status_code == 200
    conn = mosdb.connect(study.db_path)
    order_a, order_b = mosdb.get_rater(conn, a).order, mosdb.get_rater(conn, b).order
    conn.close()
    assert order_a != order_b and sorted(order_a) == sorted(order_b)
    # the same name again: refused; with the resume code (typed any case, no dashes): the same rater
    assert client.post("/api/raters", json={"name": " ann "}).status_code == 409
    code = ha["X-Rater-Token"].replace("-", "").lower()
    r = client.post("/api/resume", json={"name": "Ann", "token": code})
    assert r.status_code == 200 and r.get_json()["rater"] == a
    assert state(client, a, {"X-Rater-Token": code})["next"] == order_a[1]
    assert client.post("/api/resume", json={"name": "Ann", "token": hb["X-Rater-Token"]}).status_code == 403
    assert client.post("/api/resume", json={"name": "Zed", "token": code}).status_code == 403


def test_changing_the_latest_vote_only(client):
    rater, headers = register(client, "Ann")
    s = state(client, rater, headers)
    first = s["next"]
    s = vote(client, rater, headers, first, 2).get_json()
    second = s["next"]
    assert vote(client, rater, headers, first, 3).status_code == 200  # change the latest
    assert vote(client, rater, headers, second, 5).status_code == 200
    r = vote(client, rater, headers, first, 1)
    assert r.status_code == 409 and "latest" in r.get_json()["error"]
    votes = client.get(f"/api/raters/{rater}/votes", headers=headers).get_json()["votes"]
    assert votes == [{"item": first, "score": 3}, {"item": second, "score": 5}]


def test_out_of_turn_vote_is_409(client, study):
    rater, headers = register(client, "Ann")
    nxt = state(client, rater, headers)["next"]
    other = next(it.id for it in study.items if it.id != nxt)
    r = vote(client, rater, headers, other, 3)
    assert r.status_code == 409 and "not the current image" in r.get_json()["error"]


@pytest.mark.parametrize("score", [0, 6, -1, "abc", "3", 3.5, True, None, [3]])
def test_bad_scores_are_400(client, score):
    rater, headers = register(client, "Ann")
    nxt = state(client, rater, headers)["next"]
    r = vote(client, rater, headers, nxt, score)
    assert r.status_code == 400
    assert "score" in r.get_json()["error"]
    assert state(client, rater, headers)["done"] == 0


def test_malformed_requests(client, study):
    rater, headers = register(client, "Ann")
    url = f"/api/raters/{rater}/votes"
    nxt = state(client, rater, headers)["next"]
    # unknown image ids, well-formed or not
    for item in ("0123456789abcdef", "../study.json", "", "x" * 100):
        r = vote(client, rater, headers, item, 3)
        assert r.status_code == 404, item
    assert vote(client, rater, headers, 17, 3).status_code == 400
    assert vote(client, rater, headers, study.calibration[0].id, 1).status_code == 400  # fixed scores
    bad_json = client.post(url, data="{not json", headers=headers, content_type="application/json")
    assert bad_json.status_code == 400
    assert client.post(url, json=[nxt, 3], headers=headers).status_code == 400
    assert client.post(url, data=f"item={nxt}&score=3", headers=headers).status_code == 415  # a form post
    big = {"item": nxt, "score": 3, "pad": "x" * 10_000}
    assert client.post(url, json=big, headers=headers).status_code == 413
    for name in ("", "   ", 5, "x" * 61, "tab\there" * 1 + "\x00"):
        assert client.post("/api/raters", json={"name": name}).status_code == 400, name
    assert client.post("/api/raters", data="name=Eve").status_code == 415
    assert client.get("/api/nothing").status_code == 404
    assert client.delete(url, headers=headers).status_code == 405
    assert state(client, rater, headers)["done"] == 0


def test_other_raters_token_is_403(client):
    a, ha = register(client, "Ann")
    b, hb = register(client, "Bob")
    nxt = state(client, a, ha)["next"]
    assert vote(client, a, ha, nxt, 4).status_code == 200
    for headers, expected in ((hb, 403), ({}, 401), ({"X-Rater-Token": "AAAA-BBBB-CCCC"}, 403)):
        assert client.get(f"/api/raters/{a}", headers=headers).status_code == expected
        assert client.get(f"/api/raters/{a}/votes", headers=headers).status_code == expected
        assert client.post(f"/api/raters/{a}/calibration", json={}, headers=headers).status_code == expected
        r = client.post(f"/api/raters/{a}/votes", json={"item": nxt, "score": 1}, headers=headers)
        assert r.status_code == expected
    assert client.get("/api/raters/ffffffffffffffff", headers=ha).status_code == 404
    # Ann's vote is untouched, Bob has none
    assert client.get(f"/api/raters/{a}/votes", headers=ha).get_json()["votes"] == [{"item": nxt, "score": 4}]
    assert client.get(f"/api/raters/{b}/votes", headers=hb).get_json()["votes"] == []


TRAVERSALS = [
    "/images/../study.json",
    "/images/..%2Fstudy.json",
    "/images/%2e%2e%2fstudy.json",
    "/images/%2E%2E/study.json",
    "/images/..%252Fstudy.json",
    "/images/..%5cstudy.json",
    "/images/..\\study.json",
    "/images/....//study.json",
    "/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/images/..%2F..%2F..%2Fetc%2Fpasswd",
    "/images/%00",
    "/images/images%2F{id}.png",
    "/images/{id}.png",
    "/images/{id}/../../study.json",
    "/images//etc/passwd",
    "/images/%2Fetc%2Fpasswd",
    "/study.json",
    "/votes.sqlite",
    "/images/",
    "/app.js/../study.json",
    "/static/../study.json",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused(client, study, path):
    path = path.format(id=study.items[0].id)
    r = client.get(path)
    assert r.status_code in (404, 405), (path, r.status_code)
    assert b"esrgan-mos-study" not in r.data and b"SQLite" not in r.data and b"root:" not in r.data
    assert not r.data.startswith(b"\x89PNG")


def test_host_and_origin_checks(client, study):
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    r = client.post("/api/raters", json={"name": "Ann"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/api/raters", json={"name": "Ann"}, headers={"Origin": "http://localhost"})
    assert r.status_code == 201
    # a non-loopback --host accepts any Host (the name it is reached by cannot be known)
    any_host = create_app(study, trusted_hosts=None).test_client()
    assert any_host.get("/", headers={"Host": "lab-pc"}).status_code == 200


def test_nothing_a_rater_sees_names_methods_or_files(client, study):
    """Every page, script, style, JSON answer and header of a whole session, searched for names."""
    # "esrgan" too: a page that names the software would hint at one of the methods.
    forbidden = [*METHOD_NAMES, *IMAGE_NAMES, "esrgan", "_out", "_rlt", "x4.png", "study.json"]
    forbidden.append(str(study.root))
    responses = [client.get(p) for p in ("/", "/app.js", "/app.css")]
    rater, headers = register(client, "Ann", calibrate=False)
    responses.append(client.get(f"/api/raters/{rater}", headers=headers))
    s = responses[-1].get_json()
    for pair in s["calibration"]:
        responses += [client.get(f"/images/{e['item']}") for e in pair]
    responses.append(client.post(f"/api/raters/{rater}/calibration", json={}, headers=headers))
    while s["next"] is not None:
        responses.append(client.get(f"/images/{s['next']}"))
        responses.append(vote(client, rater, headers, s["next"], 3))
        s = responses[-1].get_json()
    responses.append(client.get(f"/api/raters/{rater}/votes", headers=headers))
    responses.append(vote(client, rater, headers, "0123456789abcdef", 3))  # error answers too
    for r in responses:
        # image bodies are pixels only (test_mos_study checks the PNGs carry no metadata)
        body = "" if r.mimetype == "image/png" else r.data.decode()
        text = body.lower() + " " + " ".join(f"{k}: {v}" for k, v in r.headers).lower()
        for word in forbidden:
            assert word.lower() not in text, (r.request.path, word)
        # no file names, and no file times: files were written in method order
        assert "content-disposition" not in text and "last-modified" not in text
    ids = {it.id for it in (*study.items, *study.calibration)}
    for r in responses:
        if r.is_json:
            for value in re.findall(r'"([0-9a-f]{16})"', r.data.decode()):
                assert value in ids or value == rater  # every id-like value is an opaque id


def test_restart_keeps_every_vote(study):
    """Votes written through one app are all there in a new app on the same folder (a restart)."""
    app1 = create_app(study)
    c1 = app1.test_client()
    rater, headers = register(c1, "Ann")
    s = state(c1, rater, headers)
    cast = []
    for score in (5, 1, 4, 2):
        r = vote(c1, rater, headers, s["next"], score)
        cast.append({"item": s["next"], "score": score})
        s = r.get_json()
    del app1, c1
    c2 = create_app(study.root).test_client()
    assert c2.get(f"/api/raters/{rater}/votes", headers=headers).get_json()["votes"] == cast
    s2 = state(c2, rater, headers)
    assert (s2["done"], s2["next"]) == (4, s["next"])


def _start_server(study_dir: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "esrgan", "mos", "serve", str(study_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert match, line
    return proc, match.group(0)


def _call(url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_killed_server_loses_nothing(study):
    """SIGKILL the real server process right after votes were answered; a new process has them all."""
    proc, base = _start_server(study.root)
    try:
        reg = _call(f"{base}api/raters", {"name": "Ann"})
        headers = {"X-Rater-Token": reg["token"]}
        s = _call(f"{base}api/raters/{reg['rater']}/calibration", {}, headers)
        cast = []
        for score in (3, 4, 5):
            cast.append({"item": s["next"], "score": score})
            s = _call(f"{base}api/raters/{reg['rater']}/votes", cast[-1], headers)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    proc, base = _start_server(study.root)
    try:
        votes = _call(f"{base}api/raters/{reg['rater']}/votes", headers=headers)["votes"]
        assert votes == cast
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
