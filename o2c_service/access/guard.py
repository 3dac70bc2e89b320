"""Enforcing the rule table on every request: a key, a known one, with the role.

Every API route is built by the route class `protect` installs, which looks the
route's rule up when the route is added (a route without one stops the API from
being created) and checks the caller before anything else, before the body is
read: no key, or an unknown or revoked one, is 401 with `WWW-Authenticate:
Bearer`; a key without the role is 403. The caller goes on `request.state.caller`.

A key found is kept in memory for `KEY_CACHE_SECONDS` (5 s), keyed by its SHA-256:
a request then costs no database read, and a revoked key stops working within
5 seconds in every API process. An unknown key is never cached, so a new key
works at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response, Security, status
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.routing import BaseRoute, Mount, Route

from o2c_service.access.keys import KeyStore, hash_key
from o2c_service.access.rules import PUBLIC, SESSION, Caller, Open, Rule, rule_for
from o2c_service.store import ApiStore

KEY_CACHE_SECONDS = 5.0
"""How long a key found is trusted without reading the database again: a revoked key
stops working within this long."""
_CACHE_LIMIT = 10_000

BEARER = HTTPBearer(
    scheme_name="apiKey",
    description="An API key: `Authorization: Bearer o2c_...` "
    "(`o2c keys create`; docs/api-keys.md).",
    auto_error=False,
)
"""For the OpenAPI document only (Swagger UI's Authorize button); `Authenticator` checks."""


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def bearer_token(authorization: str | None) -> str:
    """The key in an `Authorization: Bearer <key>` header; 401 without one."""
    if not authorization:
        raise unauthorized("an API key is required: send Authorization: Bearer <key>")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("the Authorization header must be Bearer <key>")
    return token


class Authenticator:
    """Finds the caller of a key, in the API's database (opened at the first request)."""

    def __init__(
        self,
        store: ApiStore,
        *,
        cache_seconds: float = KEY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_store = store
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Caller]] = {}

    def _store(self) -> KeyStore:
        return KeyStore(self._api_store.database())

    def _lookup(self, secret_sha256: str) -> Caller | None:
        key = self._store().by_hash(secret_sha256)
        return None if key is None else Caller(key.key_id, key.name, key.role)

    async def caller(self, authorization: str | None) -> Caller:
        """The key's caller; 401 if there is no key, or it is unknown or revoked."""
        return await self.caller_by_digest(hash_key(bearer_token(authorization)))

    async def caller_by_digest(self, digest: str) -> Caller:
        """The caller of the key with this SHA-256 (a console session keeps only that);
        401 if it is unknown or revoked."""
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await asyncio.to_thread(self._lookup, digest)
        if found is None:
            self._cache.pop(digest, None)
            raise unauthorized("the API key is not known or has been revoked")
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache = {d: entry for d, entry in self._cache.items() if entry[0] > now}
        self._cache[digest] = (now + self._cache_seconds, found)
        return found

    async def knows(self, authorization: str | None) -> bool:
        """Whether the header carries a known, unrevoked key (whatever its role)."""
        try:
            await self.caller(authorization)
        except HTTPException:
            return False
        return True


def _route_rule(path: str, methods: Sequence[str] | set[str] | None) -> Rule:
    rules = {rule_for(method.upper(), path) for method in methods or ("GET",)}
    if len(rules) != 1:
        raise ValueError(f"{path}: its methods have different rules; declare them apart")
    return rules.pop()


def guarded_route_class(authenticator: Authenticator) -> type[APIRoute]:
    """The route class of an API whose every route follows `ROUTE_RULES`."""

    class GuardedRoute(APIRoute):
        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            self.rule = _route_rule(path, kwargs.get("methods"))
            if not isinstance(self.rule, Open):
                kwargs["dependencies"] = [*(kwargs.get("dependencies") or []), Security(BEARER)]
                kwargs["openapi_extra"] = {
                    "x-roles": sorted(role.value for role in self.rule),
                    **(kwargs.get("openapi_extra") or {}),
                }
            super().__init__(path, endpoint, **kwargs)

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            roles = self.rule
            if isinstance(roles, Open):
                return handler
            allowed = ", ".join(sorted(role.value for role in roles))
            route = f"{', '.join(sorted(self.methods or ()))} {self.path}"

            async def guarded(request: Request) -> Response:
                caller = await authenticator.caller(request.headers.get("authorization"))
                if caller.role not in roles:
                    raise HTTPException(
                        status.HTTP_403_FORBIDDEN,
                        f"the {caller.role.value} key '{caller.name}' may not call {route}; "
                        f"it needs a key with the role {allowed}",
                    )
                request.state.caller = caller
                return await handler(request)

            return guarded

    return GuardedRoute


def protect(app: FastAPI, authenticator: Authenticator) -> None:
    """Every API route added from now on checks its caller against the rule table."""
    app.router.route_class = guarded_route_class(authenticator)
    app.state.authenticator = authenticator


def require_rules(app: FastAPI) -> None:
    """Fail if any route escapes the rule table: an API route not built by `protect`'s
    class, or a plain route or mount (not checked per request) that is not public."""
    guarded = app.router.route_class
    for route in app.routes:
        if isinstance(route, APIRoute):
            if not isinstance(route, guarded):
                raise ValueError(f"{route.path} was added without the API's route class")
            continue
        for method in _plain_methods(route):
            rule = rule_for(method, _plain_path(route))
            if rule is SESSION and _checks_sessions(route):
                continue
            if rule is not PUBLIC:
                raise ValueError(f"{method} {_plain_path(route)} must be public: it is not checked")


def _checks_sessions(route: BaseRoute) -> bool:
    """A mount of an app that checks every request's session itself (the console marks
    itself so only once its own routes have all passed its rule table)."""
    return isinstance(route, Mount) and getattr(
        getattr(route.app, "state", None), "checks_sessions", False
    )


def _plain_methods(route: BaseRoute) -> Sequence[str]:
    if isinstance(route, Route):
        return sorted(route.methods or {"GET"})
    return ["GET"]


def _plain_path(route: BaseRoute) -> str:
    if isinstance(route, (Route, Mount)):
        return route.path
    raise ValueError(f"{route!r}: a route of a kind the rule table cannot name")


def caller_of(request: Request) -> Caller:
    """The caller the guard found (every route with roles has one)."""
    caller: Caller = request.state.caller
    return caller
