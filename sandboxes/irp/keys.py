"""The sandbox's two RSA key pairs: one the AppKey is encrypted to (auth), one that signs invoices and QR codes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class KeyPair:
    private: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def load_or_make(key_dir: Path | None, name: str) -> KeyPair:
    """The key pair kept as ``<key_dir>/<name>.pem`` (made, 0600, when missing); a fresh one without a directory."""
    if key_dir is not None:
        path = key_dir / f"{name}.pem"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            return KeyPair(key)
    pair = KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    if key_dir is not None:
        key_dir.mkdir(parents=True, exist_ok=True)
        path = key_dir / f"{name}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pair.private_pem)
        (key_dir / f"{name}.public.pem").write_text(pair.public_pem)
    return pair
