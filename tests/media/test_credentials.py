"""Content Credentials: real mp4s signed with c2pa-python and read back, real certificates."""

from __future__ import annotations

import datetime as dt
import logging
import stat
from pathlib import Path

import numpy as np
import pytest

from storyflow import media
from storyflow.core.errors import InputError, StoryflowError
from storyflow.media import credentials
from storyflow.media.credentials import sign_media, verify_media

pytest.importorskip("c2pa")

PLANTED_KEY = "sk-planted-7f3c9a1e5b2d4c6a8e0f"


@pytest.fixture(autouse=True)
def no_signing_env(monkeypatch):
    """Every test starts without a user certificate (the developer's shell may have one)."""
    for name in (credentials.CERT_ENV, credentials.KEY_ENV, credentials.ALG_ENV):
        monkeypatch.delenv(name, raising=False)


def moving_bar(n: int, w: int = 64, h: int = 36, shift: int = 0) -> list[np.ndarray]:
    """A gradient with a bright bar that moves a pixel per frame (so frames differ)."""
    base = np.zeros((h, w, 3), np.uint8)
    base[..., 0] = np.linspace(0, 200, w, dtype=np.float32)[None, :]
    base[..., 2] = 90
    out = []
    for i in range(n):
        frame = base.copy()
        frame[:, (shift + i) % w] = 255
        out.append(frame)
    return out


@pytest.fixture
def videos(tmp_path) -> dict[str, Path]:
    """A 12-frame "film" and two 6-frame "clips", 64x36, in their own folder."""
    folder = tmp_path / "work"
    paths = {"film": folder / "film.mp4", "clip_a": folder / "clip-a.mp4", "clip_b": folder / "clip-b.mp4"}
    media.write_video(paths["film"], moving_bar(12), 64, 36, 12)
    media.write_video(paths["clip_a"], moving_bar(6), 64, 36, 12)
    media.write_video(paths["clip_b"], moving_bar(6, shift=30), 64, 36, 12)
    return paths


def sign_film(videos: dict[str, Path], home: Path, **extra) -> credentials.SignResult:
    return sign_media(videos["film"], home=home, title="Tiny Harbour",
                      ingredients=[videos["clip_a"], videos["clip_b"]], generator_version="0.1.0",
                      **extra)  # fmt: skip


def decoded(path: Path) -> list[np.ndarray]:
    return list(media.read_frames(path))


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- certificates made here


def make_chain(folder: Path, common_name: str, kind: str = "ec", *, self_signed: bool = False) -> tuple[Path, Path]:
    """A CA and a signing certificate it issues (or one lone self-signed one); (chain.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def new_key():
        if kind == "ed25519":
            return ed25519.Ed25519PrivateKey.generate()
        if kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    digest = None if kind == "ed25519" else hashes.SHA256()
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key, leaf_key = new_key(), new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Studio")])  # fmt: skip
    signed_by = leaf_key if self_signed else ca_key
    issuer = leaf_name if self_signed else ca_name
    leaf = (
        x509.CertificateBuilder().subject_name(leaf_name).issuer_name(issuer)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signed_by.public_key()), critical=False)
        .sign(signed_by, digest)
    )  # fmt: skip
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    if not self_signed:
        ca = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=60))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(ca_key, digest)
        )  # fmt: skip
        pem += ca.public_bytes(serialization.Encoding.PEM)
    folder.mkdir(parents=True, exist_ok=True)
    chain_path, key_path = folder / "chain.pem", folder / "key.pem"
    chain_path.write_bytes(pem)
    key_path.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))  # fmt: skip
    return chain_path, key_path


# ---------------------------------------------------------------- the local CA


def test_local_ca_signs_a_film_that_reads_back_as_ai_made_from_its_clips(videos, storyflow_home):
    frames_before = decoded(videos["film"])

    result = sign_film(videos, storyflow_home)

    # what the signer is told
    assert result.self_made_ca is True
    assert "untrusted outside this machine" in result.trusted_note
    assert str(storyflow_home / "c2pa") in result.trusted_note
    assert result.sha256 == media.sha256_file(videos["film"])
    # what anyone reading the file sees
    report = verify_media(videos["film"], home=storyflow_home)
    assert report.has_manifest and report.valid and report.trusted and report.local_ca
    assert report.status_codes == ()
    assert report.manifest_label == result.manifest_label
    assert report.title == "Tiny Harbour"
    assert report.claim_generator == "storyflow 0.1.0"
    created = report.actions[0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    assert created["softwareAgent"]["name"] == "storyflow"
    assert report.ingredients == ("clip-a.mp4", "clip-b.mp4")
    assert report.signer == result.signer and report.issuer == result.issuer
    assert "storyflow local signer" in report.signer
    assert "clip-b.mp4" in report.describe()
    # the picture is untouched: the same frames decode
    frames_after = decoded(videos["film"])
    assert len(frames_after) == len(frames_before) == 12
    assert all(np.array_equal(a, b) for a, b in zip(frames_before, frames_after, strict=True))
    # elsewhere (no local CA to trust) it is intact, but its signer is unknown
    stranger = verify_media(videos["film"])
    assert stranger.valid and not stranger.trusted and not stranger.local_ca
    assert "signingCredential.untrusted" in stranger.status_codes


def test_local_ca_is_made_once_with_private_keys_and_reused(videos, storyflow_home):
    first = sign_film(videos, storyflow_home)
    folder = storyflow_home / "c2pa"
    made = listing(folder)
    assert set(made) == {"ca.pem", "ca.key", "signer.pem", "signer.key"}
    for key in ("ca.key", "signer.key"):
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600
    inodes = {name: (folder / name).stat().st_ino for name in made}

    second = sign_media(videos["clip_a"], home=storyflow_home, title="clip a", generator_version="0.1.0")

    assert listing(folder) == made  # same CA, same signing certificate, nothing regenerated
    assert {name: (folder / name).stat().st_ino for name in made} == inodes
    assert (second.signer, second.issuer, second.self_made_ca) == (first.signer, first.issuer, True)
    assert verify_media(videos["clip_a"], home=storyflow_home).local_ca
    # signing again (a forced rerun) gives the film fresh credentials that verify
    again = sign_film(videos, storyflow_home)
    report = verify_media(videos["film"], home=storyflow_home)
    assert report.valid and report.manifest_label == again.manifest_label != first.manifest_label
    assert listing(folder) == made
    # nothing else was written into the home folder, and no temporaries were left beside the videos
    assert sorted(p.name for p in storyflow_home.iterdir()) == ["c2pa"]
    assert sorted(p.name for p in videos["film"].parent.iterdir()) == ["clip-a.mp4", "clip-b.mp4", "film.mp4"]


def test_runs_racing_to_make_the_local_ca_end_up_sharing_one(storyflow_home):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from cryptography import x509

    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        folders = list(pool.map(credentials.ensure_local_ca, [storyflow_home] * 4))

    assert set(folders) == {storyflow_home / "c2pa"}
    assert sorted(p.name for p in storyflow_home.iterdir()) == ["c2pa"]  # the losers' staging is gone
    signer, ca = x509.load_pem_x509_certificates((storyflow_home / "c2pa" / "signer.pem").read_bytes())
    signer.verify_directly_issued_by(x509.load_pem_x509_certificate((storyflow_home / "c2pa" / "ca.pem").read_bytes()))
    assert ca.subject == signer.issuer


def test_a_file_without_credentials_reads_as_unsigned(videos, storyflow_home):
    report = verify_media(videos["film"], home=storyflow_home)
    assert report.has_manifest is False and report.valid is False
    assert "no Content Credentials" in report.describe()


# ---------------------------------------------------------------- tampering


def top_level_boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """mp4 top-level boxes: type -> (payload start, payload end)."""
    boxes, at = {}, 0
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8].decode("latin-1")
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        boxes.setdefault(kind, (at + header, at + size))
        at += size
    return boxes


def test_changed_media_bytes_are_caught_as_a_hash_mismatch(videos, storyflow_home):
    sign_film(videos, storyflow_home)
    data = bytearray(videos["film"].read_bytes())
    start, end = top_level_boxes(bytes(data))["mdat"]
    data[(start + end) // 2] ^= 0xFF  # one byte of picture data
    videos["film"].write_bytes(bytes(data))

    report = verify_media(videos["film"], home=storyflow_home)

    assert report.has_manifest and not report.valid and not report.trusted
    assert report.validation_state == "Invalid"
    assert "assertion.bmffHash.mismatch" in report.status_codes
    assert "INVALID" in report.describe()


# ---------------------------------------------------------------- bring your own certificate


@pytest.mark.parametrize(("kind", "alg"), [("ec", "es256"), ("ed25519", "ed25519"), ("rsa", "ps256")])
def test_users_own_certificate_signs_instead_of_the_local_ca(videos, storyflow_home, tmp_path, monkeypatch, kind, alg):
    chain, key = make_chain(tmp_path / "pki", "Jane Doe signer", kind)
    monkeypatch.setenv(credentials.CERT_ENV, str(chain))
    monkeypatch.setenv(credentials.KEY_ENV, str(key))

    result = sign_film(videos, storyflow_home)

    assert "CN=Jane Doe signer" in result.signer and "CN=Jane Doe signer CA" in result.issuer
    assert result.self_made_ca is False and "untrusted outside this machine" not in result.trusted_note
    assert result.alg == alg
    assert not (storyflow_home / "c2pa").exists()  # no local CA made when the user brings one
    report = verify_media(videos["film"], home=storyflow_home)
    assert report.valid and not report.local_ca
    assert (report.signer, report.issuer, report.alg) == (result.signer, result.issuer, alg)
    assert report.ingredients == ("clip-a.mp4", "clip-b.mp4")


def test_pem_text_in_the_variables_works_like_a_path(videos, storyflow_home, tmp_path, monkeypatch):
    chain, key = make_chain(tmp_path / "pki", "Inline signer")
    monkeypatch.setenv(credentials.CERT_ENV, chain.read_text())
    monkeypatch.setenv(credentials.KEY_ENV, key.read_text())
    assert "CN=Inline signer" in sign_film(videos, storyflow_home).signer


@pytest.mark.parametrize("given", [credentials.CERT_ENV, credentials.KEY_ENV])
def test_one_variable_without_the_other_names_the_missing_one(videos, storyflow_home, tmp_path, monkeypatch, given):
    chain, key = make_chain(tmp_path / "pki", "Half signer")
    monkeypatch.setenv(given, str(chain if given == credentials.CERT_ENV else key))
    missing = credentials.KEY_ENV if given == credentials.CERT_ENV else credentials.CERT_ENV
    before = listing(videos["film"].parent)

    with pytest.raises(InputError) as caught:
        sign_film(videos, storyflow_home)

    assert f"{missing} is not" in caught.value.message
    assert missing in caught.value.fix and "unset" in caught.value.fix
    assert listing(videos["film"].parent) == before


def _mismatched(tmp_path):
    chain, _ = make_chain(tmp_path / "a", "Signer A")
    _, other_key = make_chain(tmp_path / "b", "Signer B")
    return chain, other_key, "does not belong to the first certificate"


def _self_signed(tmp_path):
    chain, key = make_chain(tmp_path / "s", "Lonely signer", self_signed=True)
    return chain, key, "self-signed"


def _not_a_certificate(tmp_path):
    _, key = make_chain(tmp_path / "n", "Signer N")
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("this is not a certificate\n")
    return bogus, key, "no PEM certificate"


def _missing_file(tmp_path):
    _, key = make_chain(tmp_path / "m", "Signer M")
    return tmp_path / "nowhere.pem", key, "cannot read the file"


@pytest.mark.parametrize("case", [_mismatched, _self_signed, _not_a_certificate, _missing_file])
def test_a_bad_certificate_is_refused_and_the_film_left_as_it_was(videos, storyflow_home, tmp_path, monkeypatch, case):
    chain, key, expected = case(tmp_path)
    monkeypatch.setenv(credentials.CERT_ENV, str(chain))
    monkeypatch.setenv(credentials.KEY_ENV, str(key))
    before = listing(videos["film"].parent)

    with pytest.raises(InputError) as caught:
        sign_film(videos, storyflow_home)

    assert expected in caught.value.message and caught.value.fix
    assert listing(videos["film"].parent) == before  # same bytes, no 0-byte or partial file beside it
    assert not verify_media(videos["film"]).has_manifest


def test_a_key_variable_that_names_no_file_is_not_echoed(videos, storyflow_home, tmp_path, monkeypatch):
    chain, _ = make_chain(tmp_path / "pki", "Signer K")
    raw_key = "MC4CAQAwBQYDK2VwBCIEIPlanted0KeyMaterial0NotAPath0xx"
    monkeypatch.setenv(credentials.CERT_ENV, str(chain))
    monkeypatch.setenv(credentials.KEY_ENV, raw_key)
    with pytest.raises(InputError) as caught:
        sign_film(videos, storyflow_home)
    assert credentials.KEY_ENV in caught.value.message and raw_key not in str(caught.value)


def test_an_algorithm_that_does_not_fit_the_key_names_the_variable(videos, storyflow_home, tmp_path, monkeypatch):
    chain, key = make_chain(tmp_path / "pki", "EC signer")
    monkeypatch.setenv(credentials.CERT_ENV, str(chain))
    monkeypatch.setenv(credentials.KEY_ENV, str(key))
    monkeypatch.setenv(credentials.ALG_ENV, "ps256")
    with pytest.raises(InputError) as caught:
        sign_film(videos, storyflow_home)
    assert credentials.ALG_ENV in caught.value.message and "es256" in caught.value.fix


def test_a_file_that_is_not_a_video_is_refused_and_left_as_it_was(videos, storyflow_home):
    videos["film"].write_bytes(b"not a video at all, just some bytes\n" * 20)
    before = listing(videos["film"].parent)

    with pytest.raises(StoryflowError) as caught:
        sign_film(videos, storyflow_home)

    assert videos["film"].name in caught.value.message and caught.value.fix
    assert listing(videos["film"].parent) == before
    with pytest.raises(StoryflowError):
        verify_media(videos["film"])


# ---------------------------------------------------------------- secrets


def test_secrets_never_reach_the_signed_file(videos, storyflow_home, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    facts = {"story_sha256": "ab" * 32, "storyboard_sha256": "cd" * 32, "film_id": "tiny-harbour-1"}

    result = sign_film(videos, storyflow_home, provenance=facts)

    signed = videos["film"].read_bytes()
    assert PLANTED_KEY.encode() not in signed
    assert verify_media(videos["film"], home=storyflow_home).provenance == facts
    # the signing key itself is nowhere: not in the file, the result, its record or the log
    key_lines = [line for line in (storyflow_home / "c2pa" / "signer.key").read_text().splitlines()
                 if not line.startswith("-----")]  # fmt: skip
    shown = repr(result) + repr(result.as_record()) + caplog.text + repr(credentials.signing_material(storyflow_home))
    for line in key_lines:
        assert line.encode() not in signed and line not in shown


@pytest.mark.parametrize(
    ("facts", "expected"),
    [({"openai_api_key": "anything"}, "openai_api_key"), ({"note": f"key={PLANTED_KEY}"}, "'note'")],
)
def test_provenance_facts_that_look_secret_are_refused(videos, storyflow_home, monkeypatch, facts, expected):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    before = listing(videos["film"].parent)

    with pytest.raises(InputError) as caught:
        sign_film(videos, storyflow_home, provenance=facts)

    assert expected in caught.value.message and PLANTED_KEY not in str(caught.value)
    assert listing(videos["film"].parent) == before
    assert not verify_media(videos["film"]).has_manifest
