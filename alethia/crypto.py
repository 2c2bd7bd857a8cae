"""Client-side encryption of stored artifacts: AES-256-GCM with keys from a key ring.

An artifact (a plan file, ``terraform show -json`` output, a log, a recovered state) is
sealed before it leaves the process that made it and opened after it is downloaded:

    ALETHIA-AEAD1 | key id length (1 byte) | key id | nonce (12 bytes) | ciphertext + tag

The associated data binds the object to where it belongs: ``job id`` and ``artifact
name`` (and the key id), so an object copied to another job's prefix, renamed, or
re-sealed under another key id fails authentication. Nonces are random (96 bits): far
below the birthday bound for the number of artifacts one key seals.

The key ring is a JSON document ``{"current": "<key id>", "keys": {"<key id>": "<base64
of 32 bytes>"}}``: new artifacts use ``current``; older keys stay to open what they
sealed (rotation = add a key, make it current). Where it comes from is a reference, the
setting ``ALETHIA_ARTIFACT_KEY``:

- ``file:/path/keyring.json`` or a plain path: a file (keep it 0600);
- ``env:NAME``: the key ring JSON in the environment variable ``NAME`` (a secret
  manager's injection, a Kubernetes secret).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"ALETHIA-AEAD1"
ALGORITHM = "AES-256-GCM"
NONCE_BYTES = 12
KEY_BYTES = 32


class KeyRingError(ValueError):
    """The key ring setting or document is unusable (never carries key material)."""


class SealedDataError(ValueError):
    """A sealed object failed to open: altered, moved, truncated, or sealed with an unknown key."""


def _aad(job_id: str, name: str, key_id: str) -> bytes:
    return b"\0".join((b"alethia-artifact-v1", job_id.encode(), name.encode(), key_id.encode()))


def is_sealed(blob: bytes) -> bool:
    """True when ``blob`` has the sealed-object header."""
    return blob.startswith(MAGIC)


@dataclass(frozen=True)
class KeyRing:
    """Keys by id and the id that seals new objects."""

    current: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyRingError(f"the current key id {self.current!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if not key_id or len(key_id.encode()) > 255:
                raise KeyRingError("key ids are 1-255 bytes")
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}")

    @classmethod
    def generate(cls) -> KeyRing:
        """A ring with one fresh random key, id ``k<UTC date>-<random>``."""
        key_id = f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
        return cls(key_id, {key_id: AESGCM.generate_key(bit_length=256)})

    def to_json(self) -> str:
        keys = {k: base64.b64encode(v).decode() for k, v in self.keys.items()}
        return json.dumps({"current": self.current, "keys": keys}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> KeyRing:
        """Parse a key ring document; errors name ``where`` and never echo the content."""
        try:
            doc = json.loads(text)
            keys = {str(k): base64.b64decode(str(v), validate=True) for k, v in dict(doc["keys"]).items()}
            return cls(str(doc["current"]), keys)
        except KeyRingError as exc:
            raise KeyRingError(f"artifact key ring {where}: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KeyRingError(
                f'artifact key ring {where} is not {{"current": ID, "keys": {{ID: base64 of 32 bytes}}}}'
            ) from None

    @classmethod
    def from_reference(cls, reference: str, environ: Mapping[str, str]) -> KeyRing:
        """Load the ring a setting names: ``file:PATH``, a plain path, or ``env:NAME``."""
        ref = reference.strip()
        if not ref:
            raise KeyRingError(
                "ALETHIA_ARTIFACT_KEY is not set: artifacts are encrypted, name a key ring "
                "(file:/path/keyring.json or env:VARIABLE)"
            )
        if ref.startswith("env:"):
            name = ref[4:]
            if not environ.get(name):
                raise KeyRingError(f"ALETHIA_ARTIFACT_KEY names {ref} but that variable is empty")
            return cls.from_json(environ[name], ref)
        path = Path(ref[5:] if ref.startswith("file:") else ref)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyRingError(f"artifact key ring {path} cannot be read: {exc.strerror}") from None
        return cls.from_json(text, str(path))

    def seal(self, job_id: str, name: str, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` for ``jobs/<job_id>/<name>`` with the current key."""
        kid = self.current.encode()
        nonce = os.urandom(NONCE_BYTES)
        body = AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, _aad(job_id, name, self.current))
        return MAGIC + bytes([len(kid)]) + kid + nonce + body

    def key_id_of(self, blob: bytes) -> str:
        """The key id a sealed object names ('' when it is not a sealed object)."""
        if not is_sealed(blob) or len(blob) < len(MAGIC) + 1:
            return ""
        n = blob[len(MAGIC)]
        return blob[len(MAGIC) + 1 : len(MAGIC) + 1 + n].decode("utf-8", "replace")

    def open(self, job_id: str, name: str, blob: bytes) -> bytes:
        """Decrypt and authenticate; :class:`SealedDataError` when anything does not match."""
        if not is_sealed(blob):
            raise SealedDataError("not an encrypted artifact (stored in clear or by something else)")
        start = len(MAGIC) + 1
        if len(blob) < start:
            raise SealedDataError("truncated header")
        n = blob[len(MAGIC)]
        key_id = blob[start : start + n].decode("utf-8", "replace")
        key = self.keys.get(key_id)
        if key is None:
            raise SealedDataError(f"sealed with key {key_id!r}, which is not in the key ring")
        nonce = blob[start + n : start + n + NONCE_BYTES]
        body = blob[start + n + NONCE_BYTES :]
        if len(nonce) != NONCE_BYTES or len(body) < 16:
            raise SealedDataError("truncated")
        try:
            return AESGCM(key).decrypt(nonce, body, _aad(job_id, name, key_id))
        except InvalidTag:
            raise SealedDataError(
                "authentication failed: altered, or not sealed for this job and name"
            ) from None
