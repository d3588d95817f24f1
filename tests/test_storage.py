"""Issue 11: outputs on object storage (STORYFLOW_STORAGE_URL), against moto's real S3 server on loopback.

Homes on several machines share one catalog (here a SQLite file outside every home) and one bucket:
a film made in home A is uploaded file by file; home B, an empty folder, fetches what its run reuses
and makes nothing; an object damaged in the bucket is refused by its sha256 and made again; and
`catalog verify --repair` never deletes the row of a file that is not here but in storage.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from storyflow.core.errors import InputError, StoryflowError
from storyflow.media import sha256_file
from storyflow.media.storage import Storage
from tests.support import aws_env, new_bucket, reporting_to, run_cli

pytestmark = pytest.mark.prefect

# Two shots of about a second each, small and silent but for the narration: a few seconds a render.
STORY = """---
title: Two Boats
style: flat previz colours
resolution: 128x72
fps: 12
seed: 5
title_card: false
---
A red boat leaves the harbour.

A blue boat comes home.
"""
PREFIX = "films"


# ---------------------------------------------------------------- the bucket


def objects(bucket: str, prefix: str = PREFIX) -> dict[str, bytes]:
    """Every object under `prefix` in the bucket, by its name below the prefix, read with boto3."""
    import boto3

    client = boto3.client("s3")
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", [])
    return {o["Key"][len(prefix) + 1 :]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The AWS variables set for this test, and a new bucket's name."""
    for name, value in aws_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    return new_bucket()


# ---------------------------------------------------------------- a) the storage itself


def test_put_has_fetch_round_trip_and_a_damaged_object_is_refused(s3: str, tmp_path: Path, caplog) -> None:
    storage = Storage.open(f"s3://{s3}/{PREFIX}")
    made = tmp_path / "a" / "clips" / "c0ffee.mp4"
    made.parent.mkdir(parents=True)
    made.write_bytes(b"a clip's bytes " * 500)
    sha256 = sha256_file(made)

    # 1. uploaded once under its stored path; the same name and size again is skipped
    assert storage.put(made, "clips/c0ffee.mp4") is True
    assert storage.put(made, "clips/c0ffee.mp4") is False
    assert storage.has("clips/c0ffee.mp4") == made.stat().st_size and storage.has("clips/nope.mp4") is None
    assert objects(s3) == {"clips/c0ffee.mp4": made.read_bytes()}
    assert storage.url("clips/c0ffee.mp4") == f"s3://{s3}/{PREFIX}/clips/c0ffee.mp4"

    # 2. fetched into another home at the same path, checked by its sha256
    elsewhere = tmp_path / "b" / "clips" / "c0ffee.mp4"
    assert storage.fetch("clips/c0ffee.mp4", elsewhere, sha256) is True
    assert elsewhere.read_bytes() == made.read_bytes()
    assert storage.fetch("clips/nope.mp4", tmp_path / "b" / "clips" / "nope.mp4", sha256) is False

    # 3. an object damaged in the bucket (same size) is refused, and leaves no file, not even a temporary
    import boto3

    boto3.client("s3").put_object(Bucket=s3, Key=f"{PREFIX}/clips/c0ffee.mp4", Body=b"X" * made.stat().st_size)
    fresh = tmp_path / "c" / "clips" / "c0ffee.mp4"
    with caplog.at_level(logging.WARNING, logger="storyflow.media.storage"):
        assert storage.fetch("clips/c0ffee.mp4", fresh, sha256) is False
    assert not fresh.parent.exists() or list(fresh.parent.iterdir()) == []
    assert "does not hold what the catalog recorded" in caplog.text and "c0ffee.mp4" in caplog.text
    # ...and a file made again in its place is uploaded over it, though the size is the same
    assert storage.put(made, "clips/c0ffee.mp4") is True
    assert objects(s3)["clips/c0ffee.mp4"] == made.read_bytes()
    # with nothing recorded to check the bytes against, nothing is fetched blindly
    assert storage.fetch("clips/c0ffee.mp4", fresh, None) is False and not fresh.exists()


def test_a_home_alone_repairs_no_row_whose_file_is_in_storage(s3: str, storyflow_home: Path) -> None:
    """Its own catalog (no other home): only storage keeps the row of a file missing here."""
    import boto3

    from storyflow.cli.text import format_verify
    from tests.catalog.test_catalog import Recorded

    rec = Recorded(storyflow_home)
    rec.catalog.storage = Storage.open(f"s3://{s3}/{PREFIX}")
    kept, lost = rec.clip("s01", 0, b"kept in storage " * 300), rec.clip("s02", 0, b"lost everywhere " * 300)
    for clip in (kept, lost):
        rec.catalog.record_clip(clip, prompt_id=rec.prompt_ids[clip.shot_id], run_id=rec.run_id)
    assert set(objects(s3)) == {"clips/s01_0.mp4", "clips/s02_0.mp4"}  # uploaded as they were recorded
    kept_bytes = kept.path.read_bytes()
    kept.path.unlink()
    lost.path.unlink()
    boto3.client("s3").delete_object(Bucket=s3, Key=f"{PREFIX}/clips/s02_0.mp4")

    report = rec.catalog.verify(repair=True)
    assert report["other_homes"] == [] and report["in_storage"] == 1 and report["not_here"] == 0
    assert [problem["path"] for problem in report["rows_without_files"]] == ["clips/s02_0.mp4"]
    assert [a["path"] for a in report["repaired"] if a["action"] == "deleted rows"] == ["clips/s02_0.mp4"]
    assert f"1 recorded file(s) are not here but in storage (s3://{s3}/{PREFIX})" in format_verify(report)
    # the kept row still finds its clip, fetched back from storage; the lost one is gone for good
    assert rec.catalog.find_clip(kept.cache_key) is not None and kept.path.read_bytes() == kept_bytes
    assert rec.catalog.find_clip(lost.cache_key) is None
    assert rec.catalog.verify()["ok"]
    rec.catalog.close()


def test_storage_errors_name_the_fix(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in aws_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match="fsspec knows no protocol nope://") as unknown:
        Storage.open("nope://bucket/films")
    assert "s3://bucket/prefix" in unknown.value.fix
    with pytest.raises(InputError, match="holds credentials") as inline:
        Storage.open("s3://AKIAEXAMPLE:hunter2-secret@bucket/films")
    assert "hunter2-secret" not in str(inline.value) and "AWS_ACCESS_KEY_ID" in inline.value.fix
    missing = Storage.open("s3://no-such-bucket-here/films")  # nothing is asked of the server until first use
    with pytest.raises(StoryflowError, match="its bucket does not exist") as first_use:
        missing.has("clips/a.mp4")
    assert "AWS_ENDPOINT_URL" in first_use.value.fix


# ---------------------------------------------------------------- b) c) d) films across homes


@dataclass
class Shared:
    """Home A's film, uploaded; home B's run of the same story against the same catalog and bucket."""

    root: Path
    story: Path
    catalog_url: str
    bucket: str
    a: dict
    b: dict

    def home(self, name: str) -> Path:
        return self.root / name / "outputs"


def render(story: Path, home: Path, catalog_url: str, storage_url: str, prefect_server: str,
           env: pytest.MonkeyPatch) -> dict:  # fmt: skip
    """Run the film flow in this process as the machine of `home` would: its settings from the environment."""
    from flows.film import run_film
    from storyflow.core.config import FilmChoices

    home.mkdir(parents=True, exist_ok=True)
    env.setenv("STORYFLOW_HOME", str(home))
    env.setenv("STORYFLOW_CATALOG_URL", catalog_url)
    env.setenv("STORYFLOW_STORAGE_URL", storage_url)
    with reporting_to(prefect_server):
        return run_film(story, FilmChoices(credentials=False, max_concurrency=2))


@pytest.fixture(scope="module")
def shared(prefect_server: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    root = tmp_path_factory.mktemp("homes")
    story = root / "two-boats.md"
    story.write_text(STORY)
    catalog_url = f"sqlite:///{root / 'shared' / 'catalog.db'}"  # outside both homes: theirs to share
    (root / "shared").mkdir()
    with pytest.MonkeyPatch.context() as env:
        for name, value in aws_env(s3_endpoint).items():
            env.setenv(name, value)
        bucket = new_bucket()
        storage_url = f"s3://{bucket}/{PREFIX}"
        a = render(story, root / "a" / "outputs", catalog_url, storage_url, prefect_server, env)
        b = render(story, root / "b" / "outputs", catalog_url, storage_url, prefect_server, env)
    return Shared(root, story, catalog_url, bucket, a, b)


def claimed_paths(catalog_url: str, home: Path) -> set[str]:
    """Every path a row of the catalog claims, as stored (relative to home)."""
    from storyflow.catalog import Catalog
    from storyflow.catalog.integrity import read_claims

    with Catalog.open(catalog_url, home) as catalog:
        return {catalog.stored_path(path) for path in read_claims(catalog).by_path}


def decoded_frames(path: Path) -> int:
    """How many frames the film holds, decoded back with PyAV."""
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def test_a_second_home_reuses_the_first_homes_film_through_storage(shared: Shared, s3_endpoint: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for name, value in aws_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    home_a, home_b = shared.home("a"), shared.home("b")
    assert shared.a["clips_generated"] > 0 and not shared.a["film_reused"]

    # 1. the bucket holds every file the catalog records, byte for byte as home A made it, and nothing else
    stored = objects(shared.bucket)
    claimed = claimed_paths(shared.catalog_url, home_a)
    assert set(stored) == claimed
    assert {Path(shared.a["recorded"]["film"]).relative_to(home_a).as_posix()} < claimed
    assert all(stored[path] == (home_a / path).read_bytes() for path in claimed)

    # 2. home B made nothing: every clip and the film itself came from storage, into B at the same paths
    assert shared.b["clips_generated"] == 0 and shared.b["clips_reused"] == shared.a["clips_generated"]
    assert shared.b["film_reused"] and shared.b["film_id"] == shared.a["film_id"]
    film_b = Path(shared.b["recorded"]["film"])
    assert film_b.is_relative_to(home_b) and film_b.is_file()
    from storyflow.catalog import Catalog

    with Catalog.open(shared.catalog_url, home_b) as catalog:
        [recorded] = [film for film in catalog.films() if film["id"] == shared.b["film_id"]]
    assert sha256_file(film_b) == recorded["sha256"] == sha256_file(Path(shared.a["recorded"]["film"]))
    assert decoded_frames(film_b) / shared.b["fps"] == pytest.approx(shared.a["duration_s"], abs=0.1)
    assert Path(shared.b["film"]).is_file()  # shown under its plain name in B too


def test_a_damaged_object_in_storage_is_made_again_only_for_its_clip(shared: Shared, s3_endpoint: str,
                                                                    prefect_server: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # fmt: skip
    import boto3

    for name, value in aws_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    # 1. a copy of the shared catalog and bucket (the other tests keep theirs intact)
    catalog = tmp_path / "catalog.db"
    shutil.copyfile(shared.root / "shared" / "catalog.db", catalog)
    bucket = new_bucket()
    client = boto3.client("s3")
    for path, data in objects(shared.bucket).items():
        client.put_object(Bucket=bucket, Key=f"{PREFIX}/{path}", Body=data)

    # 2. the last shot's clip (no other clip continues it) damaged in the bucket, at its size
    last = shared.a["shots"][-1]
    [segment] = last["segments"][-1:]
    clip = Path(segment["path"]).relative_to(shared.home("a")).as_posix()
    good = (shared.home("a") / clip).read_bytes()
    client.put_object(Bucket=bucket, Key=f"{PREFIX}/{clip}", Body=bytes(b ^ 0xFF for b in good))

    # 3. a fresh home C: that clip alone is made again, with a warning that names the mismatch
    with caplog.at_level(logging.INFO, logger="storyflow"):
        c = render(shared.story, tmp_path / "c" / "outputs", f"sqlite:///{catalog}", f"s3://{bucket}/{PREFIX}",
                   prefect_server, monkeypatch)  # fmt: skip
    assert c["clips_generated"] == 1 and c["clips_reused"] == shared.a["clips_generated"] - 1
    assert [s["clips_generated"] for s in c["shots"]] == [0] * (len(c["shots"]) - 1) + [1]
    assert not c["shots"][-1]["segments"][-1]["reused"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(clip in w and "does not hold what the catalog recorded" in w for w in warnings), warnings
    assert any("fetched" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    # the clip made again replaced the damaged object: the next home fetches it instead of making it
    remade = Path(c["shots"][-1]["segments"][-1]["path"])
    assert objects(bucket)[remade.relative_to(tmp_path / "c" / "outputs").as_posix()] == remade.read_bytes()


def test_repair_in_a_second_home_never_deletes_the_row_of_a_file_in_storage(shared: Shared, s3_endpoint: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for name, value in aws_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    home_b = shared.home("b")
    env = {"STORYFLOW_CATALOG_URL": shared.catalog_url, "STORYFLOW_STORAGE_URL": f"s3://{shared.bucket}/{PREFIX}"}
    # 1. one of home B's clips is deleted there (it is still in the bucket)
    first = shared.b["shots"][0]["segments"][0]
    clip = Path(first["path"])
    clip_sha256 = sha256_file(clip)
    clip.unlink()

    # 2. the repair counts it as in storage, and deletes no row
    repaired = run_cli(["catalog", "verify", "--repair", "--json"], home=home_b, cwd=shared.root, env=env)
    assert repaired.code == 0, repaired.stdout + repaired.stderr
    report = repaired.json
    assert report["in_storage"] >= 1 and report["storage"] == f"s3://{shared.bucket}/{PREFIX}"
    assert report["rows_without_files"] == [] and report["hash_mismatches"] == [] and report["ok"]
    assert not [action for action in report["repaired"] if action["action"].startswith("deleted")]
    shown = run_cli(["catalog", "verify"], home=home_b, cwd=shared.root, env=env)
    assert shown.code == 0 and "not here but in storage" in shown.stdout, shown.stdout + shown.stderr

    # 3. its row is still there: a lookup from home B fetches the clip back, intact
    from storyflow.catalog import Catalog
    from storyflow.catalog.api import open_storage
    from storyflow.core.config import load_settings

    monkeypatch.setenv("STORYFLOW_STORAGE_URL", env["STORYFLOW_STORAGE_URL"])
    with Catalog.open(shared.catalog_url, home_b, storage=open_storage(load_settings())) as catalog:
        keys = [key for key in _clip_keys(catalog) if catalog.find_clip(key) is not None]
    assert keys and clip.is_file() and sha256_file(clip) == clip_sha256


def _clip_keys(catalog) -> list[str]:
    from sqlalchemy import text

    with catalog.engine.connect() as conn:
        return [key for (key,) in conn.execute(text("SELECT cache_key FROM clips"))]
