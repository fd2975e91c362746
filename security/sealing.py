"""Request secrets sealed for the agents of a location (NaCl sealed boxes).

The scheduler holds only each location's *public* key: it can seal but not
open. The log therefore shows ``sealed`` ciphertext instead of headers and
bodies; only an agent holding the location's private key (from its
credentials file) can open it. A location without a key gets a transient one,
kept in NATS's memory only (``security/transient.py``).
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

import msgspec
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nats.js import JetStreamContext

from configuration import redaction
from events.types import CheckRequested, RequestData
from runtime.logs import Log
from security import transient

log = Log("tocsin.sealing")


def new_location_key() -> tuple[str, str]:
    """(private, public), base64."""
    key = PrivateKey.generate()
    return _b64(bytes(key)), _b64(bytes(key.public_key))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


#: Seconds between two looks at the transient keys (a NATS restarted forgets them).
REFRESH = 5.0


class Sealer:
    """Seals request data for the locations whose public key it knows: their own
    (``locations/<loc>.pub``), else a transient one (``security/transient.py``)."""

    def __init__(self, public_keys: dict[str, str]) -> None:
        self._boxes = {
            loc: SealedBox(PublicKey(base64.b64decode(k))) for loc, k in public_keys.items()
        }
        self._own = set(public_keys)
        self._wanted: set[str] = set()
        self._secrets: frozenset[str] = frozenset()
        self._due = 0.0
        #: URLs found to hold nothing to hide (no credentials, no secret in the query, no
        #: secret value) under ``_secrets``: a request of one, without request data, is sent as
        #: it is. Redacting its URL again for every request was half of the sealing, a
        #: twentieth of the scheduler's CPU at 100,000 tasks (py-spy).
        self._clean: set[str] = set()

    async def refresh(self, js: JetStreamContext, locations: Iterable[str] = ()) -> None:
        """Take the transient key of each location without a key of its own (``locations``
        and those of the last refreshes), putting one there first when there is none (first
        use, or NATS restarted and forgot it)."""
        new = set(locations) - self._own - self._wanted
        self._wanted |= new
        if not new and time.monotonic() < self._due:
            return  # the bucket is asked at most every REFRESH seconds
        self._due = time.monotonic() + REFRESH
        for location in sorted(self._wanted):
            try:
                found = await transient.private_key(js, location, new_location_key()[0])
            except Exception as exc:  # NATS away, or a scheduler not allowed the bucket
                log.warning(
                    "no transient key for a location without its own: its request secrets "
                    "are left out until there is one",
                    location=location,
                    error=str(exc) or type(exc).__name__,
                )
                continue
            if found is not None:
                public = PrivateKey(base64.b64decode(found)).public_key
                self._boxes[location] = SealedBox(public)

    @classmethod
    def from_dir(cls, directory: str | Path | None) -> Sealer:
        """``<dir>/locations/<location>.pub`` files; a location without one (or no directory:
        the no-auth dev mode) is sealed to a transient key once ``refresh`` found it."""
        keys: dict[str, str] = {}
        if directory:
            for pub in sorted(Path(directory, "locations").glob("*.pub")):
                keys[pub.stem] = pub.read_text().strip()
        return cls(keys)

    def hide(self, secrets: set[str], urls: Iterable[str] = ()) -> None:
        """The values (from ``${ENV}``) a request's URL must not show in clear. ``urls``: those
        about to be requested, found clean now rather than each on its first request (a
        configuration's first round is every URL at once: redacting each in it was a third of
        a drain's dispatch, py-spy)."""
        self._secrets = frozenset(secrets)
        # A URL clean before may hold one of these: each is looked at again.
        self._clean = {url for url in urls if self._is_clean(url)}

    def _is_clean(self, url: str) -> bool:
        bare, userinfo = redaction.credentials(url)
        return userinfo is None and redaction.public_url(bare, self._secrets) == url

    def seal(self, req: CheckRequested) -> CheckRequested:
        """``req`` as the log may hold it when its location has a key: headers, body and the
        URL's credentials (as the ``Authorization: Basic`` header they stand for) sealed,
        the URL bare. Without a key (no ``refresh`` could reach NATS yet), the secrets are
        left out: never in clear in the log, and the check fails visibly."""
        if req.request_data is None and req.sealed is None and req.url in self._clean:
            return req  # nothing to hide, nothing to seal: what the steps below return
        box = self._boxes.get(req.location)
        url, userinfo = redaction.credentials(req.url)
        data = req.request_data or RequestData()
        if userinfo is not None and not any(k.lower() == "authorization" for k in data.headers):
            basic = base64.b64encode(unquote(userinfo).encode()).decode()
            data = RequestData(
                data.data, data.is_json, {**data.headers, "Authorization": f"Basic {basic}"}
            )
        # A token in the query (``${ENV}``, or a parameter named like a secret): the log shows
        # the URL masked, the sealed part carries it whole.
        shown = redaction.public_url(url, self._secrets)
        opened = Opened(data.data, data.is_json, data.headers, url if shown != url else None)
        if userinfo is None and shown == req.url:
            self._clean.add(req.url)
        if opened == Opened() or box is None:
            return msgspec.structs.replace(req, url=shown, request_data=None, sealed=None)
        sealed = _b64(box.encrypt(msgspec.json.encode(opened)))
        return msgspec.structs.replace(req, url=shown, request_data=None, sealed=sealed)


class Opened(RequestData):
    """What is sealed: the request data, and the URL when the log shows it masked."""

    url: str | None = None


class Unsealer:
    def __init__(self, private_key: str) -> None:
        self._box = SealedBox(PrivateKey(base64.b64decode(private_key)))

    def open(self, req: CheckRequested) -> CheckRequested:
        if req.sealed is None:
            return req
        o = msgspec.json.decode(self._box.decrypt(base64.b64decode(req.sealed)), type=Opened)
        data = RequestData(o.data, o.is_json, o.headers)
        return msgspec.structs.replace(
            req,
            url=o.url or req.url,
            request_data=None if data == RequestData() else data,
            sealed=None,
        )


class Opener:
    """Opens a location's sealed requests: with its own key (an agent's credentials file),
    else with the transient key the scheduler keeps in NATS, read again when it no longer
    opens (the scheduler put a new one after NATS restarted)."""

    def __init__(self, own: Unsealer | None, js: JetStreamContext, location: str) -> None:
        self.own, self.js, self.location = own, js, location
        self._transient: Unsealer | None = None

    async def open(self, req: CheckRequested) -> CheckRequested:
        if req.sealed is None:
            return req
        if self.own is not None:
            return self.own.open(req)
        if self._transient is not None:
            with contextlib.suppress(CryptoError):
                return self._transient.open(req)
        key = await transient.private_key(self.js, self.location)
        if key is None:
            raise RuntimeError(
                f"no location key to open the request's secrets: this agent has no key of "
                f"location {self.location} (use its credentials file) and NATS holds no "
                "transient key for it (after a NATS restart the scheduler puts one back "
                "within seconds)"
            )
        self._transient = Unsealer(key)
        return self._transient.open(req)
