"""NKey user key pairs: an Ed25519 seed the holder keeps, a public key the server knows.

The ``nkeys`` package can encode and load seeds but not create them, so the
32 random bytes come from the OS and are encoded here in the NATS seed format.
"""

from __future__ import annotations

import os

import nkeys


def new_user_seed() -> str:
    """A fresh user seed (``SU…``), the only secret of an identity."""
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()


def public_key(seed: str) -> str:
    """The user's public key (``U…``), what the server configuration lists."""
    kp = nkeys.from_seed(bytearray(seed.encode()))
    try:
        return kp.public_key.decode()
    finally:
        kp.wipe()
