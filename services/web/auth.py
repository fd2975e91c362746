"""Logging in and out, sessions, CSRF and the access rules every route declares.

Sessions are signed cookies (itsdangerous) holding the user id, the user's
generation and a server-side session id: changing a password or disabling a user
bumps the generation and so ends their sessions at once, as each request
re-reads the user; logging out deletes the session row, so a copy of the cookie
is worth nothing afterwards.

Login attempts are limited per address and per account. The account's limit
stops guessing spread over many addresses, but only for addresses the user has
never logged in from: a stranger's failures cannot lock the user out of their
usual address.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from markupsafe import Markup

from services.web import authdb, ldapauth
from services.web.authdb import User
from services.web.settings import WebSettings
from services.web.templating import return_path, root_path, templates

SESSION_COOKIE = "tocsin_session"
CSRF_COOKIE = "tocsin_csrf"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """Raised by a route's access check; answered by a redirect (pages) or a 401 (API)."""

    def __init__(self, api: bool = False) -> None:
        self.api = api


#: Addresses and user names the limiter remembers before it sweeps the expired ones.
MAX_LIMITED_KEYS = 100_000


class RateLimiter:
    """Failed attempts per key in a sliding window (per process: enough to slow guessing)."""

    def __init__(self, attempts: int, window: float) -> None:
        self.attempts, self.window = attempts, window
        self.failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float:
        now = time.monotonic()
        q = self.failures.get(key)
        while q and q[0] <= now - self.window:
            q.popleft()
        if q and len(q) >= self.attempts:
            return q[0] + self.window - now
        if q is not None and not q:
            del self.failures[key]  # bounded memory: a key without recent failures goes
        return 0.0

    def fail(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self.failures) > MAX_LIMITED_KEYS:
            # Bounded memory against rotating user names: drop the keys whose window passed.
            stale = [k for k, q in self.failures.items() if not q or q[-1] <= now - self.window]
            for k in stale:
                del self.failures[k]
        for key in keys:
            self.failures.setdefault(key, deque(maxlen=self.attempts)).append(now)

    def reset(self, key: str) -> None:
        self.failures.pop(key, None)


@dataclass
class Auth:
    settings: WebSettings
    secret: str

    def __post_init__(self) -> None:
        self.sessions = URLSafeTimedSerializer(self.secret, salt="tocsin-session")
        self.csrf = URLSafeTimedSerializer(self.secret, salt="tocsin-csrf")
        self.limiter = RateLimiter(self.settings.login_attempts, self.settings.login_window)

    def lifetime(self, remember: bool) -> float:
        s = self.settings
        return s.remember_me_duration if remember else s.session_duration

    def session_value(self, user: User, remember: bool, sid: str) -> str:
        return self.sessions.dumps({"u": user.id, "g": user.generation, "r": remember, "s": sid})

    def set_session(
        self, request: Request, response: Response, user: User, remember: bool, sid: str
    ) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.session_value(user, remember, sid),
            max_age=int(self.settings.remember_me_duration) if remember else None,
            httponly=True,
            samesite="lax",
            secure=secure(request),
            path=root_path(request) or "/",
        )


def secure(request: Request) -> bool:
    """Cookies get ``Secure`` when the request came over HTTPS: directly, or as reported by a
    trusted proxy (``TOCSIN_TRUSTED_PROXIES``, which sets the scheme uvicorn sees)."""
    return _auth(request).settings.secure_cookies or request.url.scheme == "https"


def _auth(request: Request) -> Auth:
    return request.app.state.auth  # type: ignore[no-any-return]


async def current_user(request: Request) -> User | None:
    if hasattr(request.state, "user"):
        return request.state.user  # type: ignore[no-any-return]
    request.state.user = None
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        auth = _auth(request)
        try:
            data, signed_at = auth.sessions.loads(
                raw, max_age=int(auth.settings.remember_me_duration), return_timestamp=True
            )
        except (BadSignature, SignatureExpired):
            return None
        remember = bool(data.get("r"))
        lifetime = auth.lifetime(remember)
        age = time.time() - signed_at.timestamp()
        if age > lifetime or not isinstance(data.get("s"), str):
            return None
        async with request.app.state.pool.acquire() as conn:
            user = await authdb.session_user(conn, data["s"], int(data["u"]))
            if user is None or user.disabled or user.generation != data.get("g"):
                return None
            if age > lifetime / 2:  # sliding session: an open page keeps its operator logged in
                await authdb.extend_session(conn, data["s"], lifetime)
                request.state.refresh_session = (user, remember, data["s"])
        request.state.session_id = data["s"]
        request.state.user = user
    return request.state.user  # type: ignore[no-any-return]


async def api_token(request: Request) -> authdb.Token | None:
    """The request's valid API token (``Authorization: Bearer …``), if any (looked up once
    per request: the write guard and the route both ask)."""
    if hasattr(request.state, "token"):
        return request.state.token  # type: ignore[no-any-return]
    request.state.token = None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        async with request.app.state.pool.acquire() as conn:
            request.state.token = await authdb.check_token(conn, token.strip())
    return request.state.token  # type: ignore[no-any-return]


async def _token_ok(request: Request) -> bool:
    return await api_token(request) is not None


def page_access(public_when: tuple[str, ...] = ("all",)) -> Callable[[Request], Awaitable[None]]:
    """A dependency: the page is open when ``unauthenticated_access`` is one of
    ``public_when``, otherwise it needs a logged-in user."""

    async def check(request: Request) -> None:
        # Read the session even on an open page: the header shows who is logged in.
        user = await current_user(request)
        if user is None and _auth(request).settings.unauthenticated_access not in public_when:
            raise LoginRequired()

    return check


bearer = HTTPBearer(auto_error=False, description="an API token: `tocsin token create` prints one")
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="the session of a logged-in user"
)


async def api_access(
    request: Request,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _session: Annotated[str | None, Depends(session_cookie)],
) -> None:
    """API and metrics: a bearer token, a session, or ``unauthenticated_access: all``.

    The two security schemes are parameters so that /openapi.json declares them; the
    checks below read the request itself, as the pages do."""
    if _auth(request).settings.unauthenticated_access == "all":
        return
    if await _token_ok(request) or await current_user(request) is not None:
        return
    raise LoginRequired(api=True)


async def operator(
    request: Request,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _session: Annotated[str | None, Depends(session_cookie)],
) -> str:
    """Who writes (status-page incidents): a logged-in user or an API token, whatever
    ``unauthenticated_access`` opens for reading. Their name goes into the event."""
    user = await current_user(request)
    if user is not None:
        return user.name
    token = await api_token(request)
    if token is not None:
        return f"token:{token.name}"
    raise LoginRequired(api=request.url.path.startswith("/api/"))


def login_required_response(request: Request, exc: LoginRequired) -> Response:
    if exc.api:
        return JSONResponse(
            {"detail": "authentication required"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    target = f"{root_path(request)}/login?next={quote(return_path(request))}"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def csrf_token(request: Request) -> str:
    """The token a form carries: the CSRF cookie's nonce, signed (so a cookie planted by a
    sibling site cannot be paired with a token of the attacker's choosing)."""
    request.state.csrf_used = True
    return _auth(request).csrf.dumps(request.state.csrf_nonce)


def csrf_input(request: Request) -> Markup:
    """The hidden form field every POST form carries (a template global)."""
    # Markup for the tag only; the token itself is URL-safe base64 and is escaped anyway.
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, csrf_token(request)
    )


templates.env.globals["csrf_input"] = csrf_input


def csrf_ok(request: Request, token: str) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not token:
        return False
    try:
        value = _auth(request).csrf.loads(token, max_age=86400)
    except (BadSignature, SignatureExpired):
        return False
    return hmac.compare_digest(str(value), nonce)


async def middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    nonce = request.cookies.get(CSRF_COOKIE)
    fresh = nonce is None
    request.state.csrf_nonce = nonce or secrets.token_urlsafe(24)
    response = await call_next(request)
    auth = _auth(request)
    # Only a page with a form gets the cookie: public pages (status pages) stay cookie-free,
    # so a proxy may cache them.
    if fresh and getattr(request.state, "csrf_used", False):
        response.set_cookie(
            CSRF_COOKIE,
            request.state.csrf_nonce,
            httponly=True,
            samesite="lax",
            secure=secure(request),
            path=root_path(request) or "/",
        )
    refresh = getattr(request.state, "refresh_session", None)
    if refresh and SESSION_COOKIE not in response.headers.get("set-cookie", ""):
        auth.set_session(request, response, *refresh)
    return response


router = APIRouter(include_in_schema=False)


def _safe_next(request: Request, value: str) -> str:
    # Only local paths under our prefix: an open redirect would let a phishing link borrow
    # our login page.
    root = root_path(request)
    if not value.startswith(root + "/") or value.startswith("//") or "\\" in value:
        return root + "/"
    return value


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _login_page(
    request: Request,
    next_: str,
    error: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx: dict[str, Any] = {"next": _safe_next(request, next_), "error": error, "live": False}
    return templates.TemplateResponse(
        request, "login.html", ctx, status_code=status, headers=headers
    )


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next)


@router.post("/login", response_model=None)
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    remember: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form("/"),
) -> Response:
    if not csrf_ok(request, csrf_token):
        return _login_page(request, next, "The form expired; please try again.", 403)
    auth = _auth(request)
    address = _client(request)
    by_address, by_account = f"ip:{address}", f"user:{username}"
    wait = auth.limiter.retry_after(by_address)
    if not wait:
        wait = auth.limiter.retry_after(by_account)
        if wait:
            async with request.app.state.pool.acquire() as conn:
                if await authdb.known_address(conn, username, address):
                    wait = 0.0
    if wait > 0:
        return _login_page(
            request,
            next,
            f"Too many attempts; try again in {wait:.0f} s.",
            429,
            {"Retry-After": str(int(wait) + 1)},
        )
    sid = ""
    user = await _authenticate(request, auth, username, password)
    if user is not None:
        async with request.app.state.pool.acquire() as conn:
            sid = await authdb.open_session(conn, user, address, auth.lifetime(remember == "on"))
    if user is None:
        auth.limiter.fail(by_address, by_account)
        # One message for a wrong password, an unknown or a disabled user: no account probing.
        return _login_page(request, next, "Wrong user name or password, or account disabled.", 401)
    auth.limiter.reset(by_account)
    response = RedirectResponse(_safe_next(request, next), status_code=303)
    auth.set_session(request, response, user, remember == "on", sid)
    return response


async def _authenticate(request: Request, auth: Auth, username: str, password: str) -> User | None:
    """Against the directory when ``general.ldap`` is set (Argos then ignores its own users,
    and so does Tocsin), else against Tocsin's users."""
    async with request.app.state.pool.acquire() as conn:
        if auth.settings.ldap is None:
            return await authdb.authenticate(conn, username, password)
        if not await asyncio.to_thread(ldapauth.check, auth.settings.ldap, username, password):
            return None
        return await authdb.external_user(conn, username)


@router.post("/logout")
async def logout(request: Request, csrf_token: str = Form("")) -> Response:
    if not csrf_ok(request, csrf_token):
        return Response("The form expired; please try again.", status_code=403)
    await current_user(request)
    sid = getattr(request.state, "session_id", None)
    if sid:
        # Server-side: a copy of the cookie (another tab, a stolen one) ends here too.
        async with request.app.state.pool.acquire() as conn:
            await authdb.close_session(conn, sid)
    response = RedirectResponse(f"{root_path(request)}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=root_path(request) or "/")
    return response
