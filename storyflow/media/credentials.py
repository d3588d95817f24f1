"""Content Credentials (C2PA): label storyflow's outputs as AI-made, signed, and read them back.

    signed = sign_media(film.mp4, home=home, title="The Lighthouse", ingredients=clips,
                        generator_version=__version__)
    report = verify_media(film.mp4, home=home)   # valid? who signed? made from which clips?

The manifest says: created (`c2pa.created`) by a trained algorithm (IPTC digital source
type `trainedAlgorithmicMedia`) with storyflow <version>, with the clips placed in it as
ingredients, plus a few non-secret provenance facts the caller passes.

Signing material comes from the settings (storyflow.core.config): STORYFLOW_C2PA_CERT (a PEM chain, signing
certificate first, then its CA) and STORYFLOW_C2PA_KEY (the PEM private key of the first
certificate), each a file path or the PEM text itself; STORYFLOW_C2PA_ALG picks es256,
es384, es512, ps256, ps384, ps512 or ed25519 (default: what the key is). Without them,
storyflow makes a local CA and a signing certificate once, under $STORYFLOW_HOME/c2pa/,
and reuses them: such files verify as intact, but nobody else trusts that CA.

c2pa-python and cryptography are imported inside the functions that use them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyflow import media
from storyflow.media.files import FILE_MODE, fsync_dir
from storyflow.core.config import Settings, load_settings
from storyflow.core.errors import InputError, MediaError
from storyflow.core.memory import release_freed_memory

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger("storyflow.media.credentials")

GENERATOR = "storyflow"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PROVENANCE_LABEL = "org.storyflow.provenance"

CERT_ENV = "STORYFLOW_C2PA_CERT"
KEY_ENV = "STORYFLOW_C2PA_KEY"
ALG_ENV = "STORYFLOW_C2PA_ALG"

LOCAL_CA_DIR = "c2pa"  # under $STORYFLOW_HOME
CA_CERT, CA_KEY, SIGNER_CHAIN, SIGNER_KEY = "ca.pem", "ca.key", "signer.pem", "signer.key"
LOCAL_CA_YEARS, LOCAL_SIGNER_YEARS = 20, 10
_STALE_STAGING_S = 60  # a staging folder this old belongs to a killed process

ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")

# The formats storyflow writes that C2PA can carry a manifest in.
MIME_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}

# Network look-ups are off: signing and verifying work offline, and say the same everywhere.
_OFFLINE = {"remote_manifest_fetch": False, "ocsp_fetch": False}


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class SignResult:
    """What sign_media did: who signed, how far to trust it, and the signed file's hash."""

    path: Path
    sha256: str  # of the signed file
    manifest_label: str  # urn:c2pa:... of the manifest now embedded
    signer: str  # the signing certificate's subject, e.g. "CN=storyflow local signer, O=storyflow"
    issuer: str  # the subject of the CA that issued it
    alg: str
    self_made_ca: bool  # True when storyflow's local CA (in home/c2pa) issued the certificate
    trusted_note: str

    def as_record(self) -> dict[str, Any]:
        """JSON-able facts for the catalog and the film record (never a key)."""
        return {**asdict(self), "path": str(self.path)}


@dataclass(frozen=True)
class VerifyReport:
    """What a file's Content Credentials say, and whether they hold."""

    path: Path
    has_manifest: bool
    valid: bool = False  # the manifest is intact and its signature checks (trusted or not)
    trusted: bool = False  # and the signer chains to a trust anchor (here: the local CA of `home`)
    validation_state: str = ""  # c2pa's verdict: "Invalid", "Valid" or "Trusted"
    status_codes: tuple[str, ...] = ()  # c2pa's failure codes, e.g. "assertion.bmffHash.mismatch"
    manifest_label: str = ""
    title: str = ""
    claim_generator: str = ""  # e.g. "storyflow 0.1.0"
    actions: tuple[dict[str, Any], ...] = ()  # {"action", "digitalSourceType", "softwareAgent", "when"}
    ingredients: tuple[str, ...] = ()  # ingredient titles (file names)
    signer: str = ""
    issuer: str = ""
    alg: str = ""
    signed_time: str | None = None  # only when a timestamp authority countersigned
    local_ca: bool = False  # signed by the storyflow CA in home/c2pa on this machine
    provenance: dict[str, Any] = field(default_factory=dict)  # the org.storyflow.provenance facts

    def as_record(self) -> dict[str, Any]:
        """JSON-able form (for `storyflow verify --json`)."""
        record = asdict(self)
        record["path"] = str(self.path)
        record["status_codes"] = list(self.status_codes)
        record["actions"] = list(self.actions)
        record["ingredients"] = list(self.ingredients)
        return record

    def describe(self) -> str:
        """A few human lines: the verdict first, then what the manifest claims."""
        if not self.has_manifest:
            return f"{self.path.name}: no Content Credentials"
        if not self.valid:
            verdict = "INVALID (" + ", ".join(self.status_codes) + ")"
        elif self.local_ca:
            verdict = "valid, signed by this machine's local storyflow CA (untrusted elsewhere)"
        else:
            verdict = "valid and trusted" if self.trusted else "valid, signer not in any trust list here"
        lines = [f"{self.path.name}: {verdict}", f"  title: {self.title}",
                 f"  generator: {self.claim_generator}", f"  signer: {self.signer}",
                 f"  issuer: {self.issuer}"]  # fmt: skip
        for action in self.actions:
            source = action.get("digitalSourceType", "").rsplit("/", 1)[-1]
            lines.append(f"  action: {action.get('action')}" + (f" ({source})" if source else ""))
        lines += [f"  ingredient: {title}" for title in self.ingredients]
        return "\n".join(lines)


@dataclass(frozen=True)
class SigningMaterial:
    """A certificate chain and its key, checked; the key never shows in repr or logs."""

    alg: str
    chain_pem: bytes  # signing certificate first, then its CA(s)
    key_pem: bytes = field(repr=False)
    signer: str = ""
    issuer: str = ""
    source: str = ""  # where it came from, for messages: "$STORYFLOW_HOME/c2pa" or the variables
    self_made_ca: bool = False


# ---------------------------------------------------------------- signing


def sign_media(
    path: Path,
    *,
    home: Path,
    title: str,
    ingredients: Sequence[Path] = (),
    generator_version: str,
    provenance: Mapping[str, str | int | float | bool | None] | None = None,
    settings: Settings | None = None,
) -> SignResult:
    """Embed a signed C2PA manifest in `path`, replacing it atomically; the original stays on failure.

    The signing certificate and key come from `settings` (default: this process's environment).
    """
    import c2pa

    # 1. check inputs before touching anything
    path = Path(path)
    mime = _mime_type(path, "the file to sign")
    if not path.is_file():
        raise InputError(f"cannot sign {path}: no such file", fix="check the path (stitch the film first)")
    parts = [(Path(p), _mime_type(Path(p), "ingredient")) for p in ingredients]
    for part, _ in parts:
        if not part.is_file():
            raise InputError(f"ingredient {part} does not exist", fix="pass the clips the film was made from")
    facts = _check_facts(dict(provenance or {}))
    title = _guard({"title": title, "generator_version": generator_version,
                    **{f"ingredient {i}": p.name for i, (p, _) in enumerate(parts)}}, "title and ingredients")["title"]  # fmt: skip

    # 2. the signing material: the user's certificate, or the local CA (made on first use)
    material = signing_material(home, settings)

    # 3. the manifest: created by a trained model, with storyflow, from these clips
    definition = _manifest_definition(title, generator_version, [p.name for p, _ in parts], facts)

    # 4. sign into a temporary file beside the original, read it back, then swap it in
    tmp = media.partial_path(path)
    try:
        info = c2pa.C2paSignerInfo(material.alg.encode(), material.chain_pem, material.key_pem, None)
        with (
            c2pa.Signer.from_info(info) as signer,
            c2pa.Context.from_dict(_settings(home)) as context,
            c2pa.Builder(definition, context=context) as builder,
        ):
            for index, (part, part_mime) in enumerate(parts):
                with open(part, "rb") as stream:
                    builder.add_ingredient(
                        {"title": part.name, "relationship": "componentOf", "label": _ingredient_id(index)},
                        part_mime, stream,
                    )  # fmt: skip
            release_freed_memory()  # the signer holds the whole film: give back what the stitch freed first
            with open(path, "rb") as source, open(tmp, "w+b") as dest:
                builder.sign(signer, mime, source, dest)
        report = verify_media(tmp, home=home)
        if not report.valid or not report.manifest_label:
            raise MediaError(
                f"the signed copy of {path.name} does not verify: {', '.join(report.status_codes) or 'no manifest'}",
                fix="rerun with --debug; the unsigned file was left as it was",
            )
        sha256 = media.sha256_file(tmp)
        media.commit_partial(tmp, path)
    except c2pa.C2paError as exc:
        raise _sign_error(exc, path, material) from None
    finally:
        tmp.unlink(missing_ok=True)  # c2pa leaves a 0-byte output when it fails

    # 5. say who signed it and how far that goes
    return SignResult(
        path=path, sha256=sha256, manifest_label=report.manifest_label, signer=material.signer,
        issuer=material.issuer, alg=material.alg, self_made_ca=material.self_made_ca,
        trusted_note=_trusted_note(material, home),
    )  # fmt: skip


def _manifest_definition(title: str, version: str, ingredient_names: list[str], facts: dict[str, Any]) -> dict:
    """The manifest JSON c2pa's Builder takes."""
    agent = {"name": GENERATOR, "version": version}
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    actions: list[dict[str, Any]] = [
        {"action": "c2pa.created", "when": now, "softwareAgent": agent,
         "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA},
    ]  # fmt: skip
    if ingredient_names:  # the clips were placed into the film
        ids = [_ingredient_id(i) for i in range(len(ingredient_names))]
        actions.append({"action": "c2pa.placed", "softwareAgent": agent, "parameters": {"ingredientIds": ids}})
    assertions: list[dict[str, Any]] = [{"label": "c2pa.actions.v2", "data": {"actions": actions}}]
    if facts:
        assertions.append({"label": PROVENANCE_LABEL, "data": facts})
    return {"title": title, "claim_generator_info": [agent], "assertions": assertions}


def _ingredient_id(index: int) -> str:
    return f"storyflow.ingredient.{index}"


def _settings(home: Path | None) -> dict[str, Any]:
    """c2pa settings: offline, no thumbnail (c2pa makes none for video), the local CA as the trust anchor."""
    settings: dict[str, Any] = {"verify": dict(_OFFLINE), "builder": {"thumbnail": {"enabled": False}}}
    ca = Path(home) / LOCAL_CA_DIR / CA_CERT if home is not None else None
    if ca is not None and ca.is_file():
        # Replaces c2pa's anchors, so "Trusted" means exactly: issued by this machine's CA.
        settings["trust"] = {"trust_anchors": ca.read_text()}
    return settings


def _sign_error(exc: Exception, path: Path, material: SigningMaterial) -> Exception:
    """A c2pa failure as a storyflow error: the certificate's fault, or the file's."""
    message = _scrub(str(exc), material.key_pem)
    if type(exc).__name__.endswith("Signature") or "certificate" in message.lower():
        return InputError(
            f"C2PA refused the signing certificate from {material.source}: {message}",
            fix="use a certificate issued by a CA (not self-signed) with digitalSignature key usage and "
            f"the emailProtection or documentSigning extended key usage; or unset {CERT_ENV} and "
            f"{KEY_ENV} to sign with the local storyflow CA",
        )
    return MediaError(
        f"cannot sign {path.name}: {message}",
        fix="check that it is a complete media file storyflow wrote; regenerate it if it is damaged",
    )


def _scrub(text: str, key_pem: bytes) -> str:
    """`text` without any line of the private key (c2pa's messages never quote it; make sure)."""
    for line in key_pem.decode("ascii", "replace").splitlines():
        if len(line) >= 16 and not line.startswith("-----"):
            text = text.replace(line, "***")
    return text


def _trusted_note(material: SigningMaterial, home: Path) -> str:
    if material.self_made_ca:
        return (
            f"signed with the local storyflow CA in {Path(home) / LOCAL_CA_DIR}: valid, but untrusted "
            f"outside this machine (set {CERT_ENV} and {KEY_ENV} to sign with your own certificate)"
        )
    return f"signed as {material.signer}, issued by {material.issuer}: trusted wherever that issuer is"


def _mime_type(path: Path, what: str) -> str:
    mime = MIME_TYPES.get(path.suffix.lower())
    if mime is None:
        raise InputError(
            f"{what} {path.name} has a format Content Credentials are not made for here",
            fix=f"sign one of: {', '.join(sorted(MIME_TYPES))}",
        )
    return mime


# ---------------------------------------------------------------- secrets stay out


def _check_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """The provenance facts, if they are flat, JSON-able and free of anything secret-looking."""
    for key, value in facts.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"provenance fact name {key!r} is not a non-empty string",
                             fix="name each fact with a plain string, e.g. 'story_sha256'")  # fmt: skip
        if not isinstance(value, str | int | float | bool | type(None)):
            raise InputError(f"provenance fact {key!r} is a {type(value).__name__}",
                             fix="pass strings, numbers, booleans or None")  # fmt: skip
    return _guard(facts, "provenance facts")


def _guard(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`values`, if nothing in them is secret (storyflow.core.secrets); else InputError naming it."""
    from storyflow.core.secrets import guard_secrets

    return guard_secrets(dict(values), where, into="Content Credentials", error=InputError)


# ---------------------------------------------------------------- signing material


def signing_material(home: Path, settings: Settings | None = None) -> SigningMaterial:
    """The user's certificate and key (the settings STORYFLOW_C2PA_CERT, _KEY and _ALG), else the
    local CA's (made on first use)."""
    settings = settings or load_settings()
    cert_value = settings.c2pa_cert or None
    key_value = settings.c2pa_key.get_secret_value() or None
    alg = settings.c2pa_alg.strip().lower() or None
    if cert_value is None and key_value is None:
        folder = ensure_local_ca(home)
        chain = _read(folder / SIGNER_CHAIN, f"the local CA's {SIGNER_CHAIN}", folder)
        key = _read(folder / SIGNER_KEY, f"the local CA's {SIGNER_KEY}", folder)
        return _check_material(chain, key, alg, source=str(folder), local=True, home=home)
    if cert_value is None or key_value is None:
        missing, given = (KEY_ENV, CERT_ENV) if key_value is None else (CERT_ENV, KEY_ENV)
        raise InputError(
            f"{given} is set but {missing} is not: a certificate and its key come together",
            fix=f"set {missing} too (a PEM file or PEM text), or unset {given} to sign with the "
            "local storyflow CA",
        )
    chain = _env_pem(CERT_ENV, cert_value)
    key = _env_pem(KEY_ENV, key_value)
    return _check_material(chain, key, alg, source=f"{CERT_ENV}/{KEY_ENV}", local=False, home=home)


def _env_pem(variable: str, value: str) -> bytes:
    """The PEM a variable holds: the text itself, or the file it names."""
    if value.lstrip().startswith("-----BEGIN"):
        return value.replace("\\n", "\n").encode()  # CI secrets often hold literal backslash-n
    try:
        return Path(value).expanduser().read_bytes()
    except OSError as exc:
        # The key variable's value is never echoed: it may be key material in some other form.
        shown = f"{variable}={value}" if variable != KEY_ENV else variable
        raise InputError(
            f"{shown}: cannot read the file it names ({exc.strerror or exc})",
            fix=f"point {variable} at a readable PEM file (or put the PEM text in it), or unset "
            f"{CERT_ENV} and {KEY_ENV} to sign with the local storyflow CA",
        ) from None


def _read(path: Path, what: str, folder: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _damaged_local_ca(folder, f"cannot read {what} ({exc.strerror or exc})") from None


def _damaged_local_ca(folder: Path, why: str) -> InputError:
    return InputError(
        f"the local signing CA in {folder} is incomplete or damaged: {why}",
        fix=f"delete {folder} and rerun to make a new one (files signed with the old one then no "
        "longer verify as this machine's)",
    )


def _check_material(
    chain_pem: bytes, key_pem: bytes, alg: str | None, *, source: str, local: bool, home: Path
) -> SigningMaterial:
    """Parse and check a chain and key the way C2PA will, with messages that say what to change."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    cert_name, key_name = (SIGNER_CHAIN, SIGNER_KEY) if local else (CERT_ENV, KEY_ENV)

    def bad(message: str, fix: str) -> InputError:
        return _damaged_local_ca(Path(source), message) if local else InputError(message, fix=fix)

    # 1. the chain: signing certificate first
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise bad(f"{cert_name} holds no PEM certificate",
                  f"point {CERT_ENV} at a PEM chain: the signing certificate, then its CA") from None  # fmt: skip
    leaf = chain[0]

    # 2. the key: readable, unencrypted, and the leaf's own
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise bad(f"the private key in {key_name} is encrypted",
                  f"give {KEY_ENV} an unencrypted PEM key (keep the file mode 0600)") from None  # fmt: skip
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise bad(f"{key_name} holds no usable PEM private key ({type(exc).__name__})",
                  f"point {KEY_ENV} at the signing certificate's PEM private key") from None  # fmt: skip
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != leaf.public_key().public_bytes(*raw):
        raise bad(
            f"the private key in {key_name} does not belong to the first certificate in {cert_name}",
            f"put the signing certificate first in {CERT_ENV} (then its CA) and point {KEY_ENV} at its key",
        )

    # 3. what C2PA refuses: a lone self-signed certificate, a CA as signer, an expired one
    basic = _extension(leaf, x509.BasicConstraints)
    if basic is not None and basic.ca:
        raise bad(f"the first certificate in {cert_name} is a CA certificate",
                  f"sign with a certificate the CA issued, not the CA itself; put it first in {CERT_ENV}")  # fmt: skip
    if leaf.issuer == leaf.subject:
        raise bad(
            f"the certificate in {cert_name} is self-signed, and C2PA refuses a lone self-signed signer",
            f"issue a signing certificate from a CA and put both in {CERT_ENV} (signing certificate "
            f"first), or unset {CERT_ENV} and {KEY_ENV} to sign with the local storyflow CA",
        )
    now = dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise bad(f"the signing certificate in {cert_name} is not valid now "
                  f"({leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d})",
                  "renew the certificate")  # fmt: skip

    # 4. the algorithm: what the key is, unless STORYFLOW_C2PA_ALG says (and agrees)
    fitting = _algorithms_for(key)
    if not fitting:
        raise bad(f"the key in {key_name} is a {type(key).__name__}, which C2PA cannot sign with",
                  "use an EC P-256/P-384/P-521, RSA (2048 bits or more) or Ed25519 key")  # fmt: skip
    if alg is not None and alg not in fitting:
        known = alg in ALGORITHMS
        raise InputError(
            f"{ALG_ENV}={alg} " + ("does not fit the signing key" if known else "is not a C2PA algorithm"),
            fix=f"set {ALG_ENV} to {' or '.join(fitting)} for this key, or unset it",
        )

    return SigningMaterial(
        alg=alg or fitting[0], chain_pem=chain_pem, key_pem=key_pem, signer=_name(leaf.subject),
        issuer=_name(leaf.issuer), source=source, self_made_ca=_issued_by_local_ca(leaf, home),
    )  # fmt: skip


def _algorithms_for(key: Any) -> tuple[str, ...]:
    """The C2PA algorithms a private key can sign with, the usual one first."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return ("ed25519",)
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return ("ps256", "ps384", "ps512")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": ("es256",), "secp384r1": ("es384",), "secp521r1": ("es512",)}.get(key.curve.name, ())
    return ()


def _extension(cert: x509.Certificate, kind: type) -> Any:
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _name(name: x509.Name) -> str:
    """A certificate name as "CN=..., O=...", in the certificate's order (as verify_media shows it)."""
    return ", ".join(f"{attr.rfc4514_attribute_name}={attr.value}" for attr in name)


def _issued_by_local_ca(leaf: x509.Certificate, home: Path | None) -> bool:
    """True when this machine's local CA (home/c2pa/ca.pem) signed `leaf`."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    ca_path = Path(home) / LOCAL_CA_DIR / CA_CERT if home is not None else None
    if ca_path is None or not ca_path.is_file():
        return False
    try:
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_path.read_bytes()))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# ---------------------------------------------------------------- the local CA


def ensure_local_ca(home: Path) -> Path:
    """The folder of storyflow's local CA and signing certificate, made once under `home`."""
    folder = Path(home) / LOCAL_CA_DIR
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    try:
        _make_local_ca(Path(home), folder)
    except OSError as exc:
        raise InputError(f"cannot make the local signing CA in {folder}: {exc.strerror or exc}",
                         fix="make STORYFLOW_HOME writable, or set STORYFLOW_C2PA_CERT and "
                         "STORYFLOW_C2PA_KEY to sign with your own certificate") from None  # fmt: skip
    return folder


def _make_local_ca(home: Path, folder: Path) -> None:
    # The four files must appear together (a leaf from one CA beside another CA's certificate
    # would never verify), so they are written into a private staging folder and published
    # with one rename. If another process wins the race, its CA is used and ours dropped.
    home.mkdir(parents=True, exist_ok=True)
    for stale in home.glob(f".{LOCAL_CA_DIR}.*.partial"):  # left by a process killed while staging
        try:
            age = time.time() - stale.stat().st_mtime
        except FileNotFoundError:
            continue  # another process's staging folder, published or dropped meanwhile
        if age > _STALE_STAGING_S:
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=home, prefix=f".{LOCAL_CA_DIR}.", suffix=".partial"))  # mode 0700
    try:
        for name, data, mode in _new_local_ca():
            _write_new(staging / name, data, mode)
        fsync_dir(staging)
        try:
            os.rename(staging, folder)  # replaces an empty folder; refuses a filled one
        except OSError:
            if not (folder.is_dir() and any(folder.iterdir())):
                raise
        else:
            fsync_dir(home)
            log.info("made a local C2PA signing CA in %s (files it signs are untrusted elsewhere)", folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` from the start (a key is never readable by others, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, mode)  # the umask may have narrowed it


def _new_local_ca() -> list[tuple[str, bytes, int]]:
    """A self-signed CA and a signing certificate it issues, both P-256 (es256), as files to write."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # tolerate a little clock skew
    organization = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "storyflow (local, untrusted)")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storyflow local signing CA"), organization])
    signer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storyflow local signer"), organization])
    ca_key, signer_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)  # fmt: skip

    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * LOCAL_CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    # C2PA's certificate profile: not a CA, digitalSignature, and an extended key usage it
    # accepts for claim signing (emailProtection; documentSigning, 1.3.6.1.5.5.7.3.36).
    signer = (
        x509.CertificateBuilder().subject_name(signer_name).issuer_name(ca_name)
        .public_key(signer_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * LOCAL_SIGNER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                              ObjectIdentifier("1.3.6.1.5.5.7.3.36")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip

    def cert_pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())  # fmt: skip

    return [
        (CA_CERT, cert_pem(ca), FILE_MODE),
        (CA_KEY, key_pem(ca_key), 0o600),
        (SIGNER_CHAIN, cert_pem(signer) + cert_pem(ca), FILE_MODE),
        (SIGNER_KEY, key_pem(signer_key), 0o600),
    ]


# ---------------------------------------------------------------- verifying


def verify_media(path: Path, *, home: Path | None = None) -> VerifyReport:
    """Read a file's Content Credentials and check them; with `home`, trust its local CA."""
    import c2pa

    # 1. read the manifest store (a file without one is an answer, not an error)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot verify {path}: no such file", fix="check the path")
    try:
        with c2pa.Context.from_dict(_settings(home)) as context, open(path, "rb") as stream:
            reader = c2pa.Reader.try_create(MIME_TYPES.get(path.suffix.lower()), stream, None, context)
            if reader is None:
                return VerifyReport(path=path, has_manifest=False)
            with reader:
                store, cr_store = json.loads(reader.json()), json.loads(reader.crjson())
    except c2pa.C2paError as exc:
        message = str(exc)
        if "could not be parsed" in message or "NotSupported" in message:
            raise MediaError(f"cannot read {path.name} as media: {message}",
                             fix="the file is damaged or not a media file storyflow wrote; regenerate it") from None  # fmt: skip
        # The asset parses but its manifest store does not: that is tampering or damage.
        return VerifyReport(path=path, has_manifest=True, validation_state="Invalid", status_codes=(message,))

    # 2. the verdict: c2pa's state and its failure codes
    label = store.get("active_manifest", "")
    manifest = store.get("manifests", {}).get(label, {})
    state = store.get("validation_state", "")
    codes = tuple(status["code"] for status in store.get("validation_status", []))

    # 3. what the manifest claims
    assertions = {item.get("label", ""): item.get("data", {}) for item in manifest.get("assertions", [])}
    actions = tuple(
        {key: action[key] for key in ("action", "digitalSourceType", "softwareAgent", "when") if key in action}
        for label_, data in assertions.items() if label_.startswith("c2pa.actions")
        for action in data.get("actions", [])
    )  # fmt: skip
    generator = (manifest.get("claim_generator_info") or [{}])[0]
    signature = manifest.get("signature_info", {})
    certificate = _certificate_info(cr_store, label)
    return VerifyReport(
        path=path, has_manifest=True, valid=state in ("Valid", "Trusted"), trusted=state == "Trusted",
        validation_state=state, status_codes=codes, manifest_label=label, title=manifest.get("title", ""),
        claim_generator=" ".join(str(generator[k]) for k in ("name", "version") if generator.get(k)),
        actions=actions, ingredients=tuple(item.get("title", "") for item in manifest.get("ingredients", [])),
        signer=_dict_name(certificate.get("subject", {})), issuer=_dict_name(certificate.get("issuer", {})),
        alg=str(signature.get("alg", "")).lower(), signed_time=signature.get("time"),
        # "Trusted" here can only mean the local CA: it is the one anchor _settings gives c2pa.
        local_ca=state == "Trusted" and home is not None and (Path(home) / LOCAL_CA_DIR / CA_CERT).is_file(),
        provenance=dict(assertions.get(PROVENANCE_LABEL, {})),
    )  # fmt: skip


def _certificate_info(cr_store: dict, label: str) -> dict:
    """The signing certificate's subject and issuer, from c2pa's crJSON report."""
    for manifest in cr_store.get("manifests", []):
        if manifest.get("label") == label:
            return manifest.get("signature", {}).get("certificateInfo", {})
    return {}


def _dict_name(parts: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in parts.items())
