"""Request secrets sealed for the agents of a location (NaCl sealed boxes).

The scheduler holds only each location's *public* key: it can seal but not
open. The log therefore shows ``sealed`` ciphertext instead of headers and
bodies; only an agent holding the location's private key (from its
credentials file) can open it.
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote

import msgspec
from nacl.public import PrivateKey, PublicKey, SealedBox

from configuration import redaction
from events.types import CheckRequested, RequestData


def new_location_key() -> tuple[str, str]:
    """(private, public), base64."""
    key = PrivateKey.generate()
    return _b64(bytes(key)), _b64(bytes(key.public_key))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Sealer:
    """Seals request data for the locations whose public key it knows."""

    def __init__(self, public_keys: dict[str, str]) -> None:
        self._boxes = {
            loc: SealedBox(PublicKey(base64.b64decode(k))) for loc, k in public_keys.items()
        }

    @classmethod
    def from_dir(cls, directory: str | Path | None) -> Sealer:
        """``<dir>/locations/<location>.pub`` files; none → nothing sealed (no-auth dev mode)."""
        keys: dict[str, str] = {}
        if directory:
            for pub in sorted(Path(directory, "locations").glob("*.pub")):
                keys[pub.stem] = pub.read_text().strip()
        return cls(keys)

    def seals(self, location: str) -> bool:
        return location in self._boxes

    def seal(self, req: CheckRequested) -> CheckRequested:
        """``req`` as the log may hold it when its location has a key: headers, body and the
        URL's credentials (as the ``Authorization: Basic`` header they stand for) sealed,
        the URL bare. Without a key, ``req`` unchanged (agents could not open it)."""
        box = self._boxes.get(req.location)
        if box is None:
            return req
        url, userinfo = redaction.credentials(req.url)
        data = req.request_data or RequestData()
        if userinfo is not None and not any(k.lower() == "authorization" for k in data.headers):
            basic = base64.b64encode(unquote(userinfo).encode()).decode()
            data = RequestData(
                data.data, data.is_json, {**data.headers, "Authorization": f"Basic {basic}"}
            )
        if data == RequestData():
            return msgspec.structs.replace(req, url=url, request_data=None, sealed=None)
        sealed = _b64(box.encrypt(msgspec.json.encode(data)))
        return msgspec.structs.replace(req, url=url, request_data=None, sealed=sealed)


class Unsealer:
    def __init__(self, private_key: str) -> None:
        self._box = SealedBox(PrivateKey(base64.b64decode(private_key)))

    def open(self, req: CheckRequested) -> CheckRequested:
        if req.sealed is None:
            return req
        data = msgspec.json.decode(
            self._box.decrypt(base64.b64decode(req.sealed)), type=RequestData
        )
        return msgspec.structs.replace(req, request_data=data, sealed=None)
