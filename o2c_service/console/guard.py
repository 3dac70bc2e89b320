"""The console's check on every request, before its page runs: a live session, a key
that is still valid, a role the page's rule allows, and on a POST the session's CSRF token.

Like the API's guard (`o2c_service.access.guard`), it is a route class: each route
looks its rule up in `CONSOLE_RULES` when it is added, so a page without a rule stops
the console from being created. No session: a page redirects to the sign-in form. A
role the rule does not allow, or a POST without the session's token: 403, and the
page does not run.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from o2c_service.access.guard import Authenticator
from o2c_service.access.rules import CONSOLE_RULES, Open, Rule, rule_for
from o2c_service.console.sessions import COOKIE, COOKIE_PATH, ConsoleSessions, Session

CSRF_FIELD = "csrf_token"


class ConsoleRefusal(Exception):
    """A request the console refuses (403): shown as a page that says why."""

    def __init__(self, message: str, status_code: int = status.HTTP_403_FORBIDDEN) -> None:
        super().__init__(message)
        self.status_code = status_code


def sign_in_redirect(request: Request, note: str | None = None) -> Response:
    """To the sign-in form, coming back to this page after (a GET's own address)."""
    back = request.url.path if request.method == "GET" else COOKIE_PATH + "/"
    if request.method == "GET" and request.url.query:
        back += "?" + request.url.query
    target = f"{COOKIE_PATH}/sign-in?next={quote(back, safe='')}"
    if note:
        target += f"&note={quote(note, safe='')}"
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


async def current_session(
    request: Request, sessions: ConsoleSessions, authenticator: Authenticator
) -> Session | None:
    """The request's session if its cookie names a live one whose key is still valid; a
    session whose key was revoked is ended here."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    found = await sessions.find(session_id)
    if found is None:
        return None
    key_sha256, csrf = found
    try:
        caller = await authenticator.caller_by_digest(key_sha256)
    except HTTPException:
        await sessions.end(session_id)
        return None
    return Session(session_id=session_id, caller=caller, csrf_token=csrf)


def session_of(request: Request) -> Session:
    """The session the guard found (every page but sign-in has one)."""
    found: Session = request.state.session
    return found


def console_route_class(sessions: ConsoleSessions, authenticator: Authenticator) -> type[APIRoute]:
    """The route class of the console: every page follows `CONSOLE_RULES`."""

    class SessionRoute(APIRoute):
        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            rules = {rule_for(m.upper(), path, CONSOLE_RULES) for m in kwargs.get("methods") or ()}
            if len(rules) != 1:
                raise ValueError(f"{path}: its methods have different rules; declare them apart")
            self.rule: Rule = rules.pop()
            kwargs["include_in_schema"] = False
            super().__init__(path, endpoint, **kwargs)

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            roles = self.rule
            if isinstance(roles, Open):
                return handler

            async def guarded(request: Request) -> Response:
                session = await current_session(request, sessions, authenticator)
                if session is None:
                    return sign_in_redirect(request)
                caller = session.caller
                request.state.session = session
                if caller.role not in roles:
                    raise ConsoleRefusal(
                        f"the {caller.role.value} key '{caller.name}' may look but not act: "
                        "this takes a support key"
                    )
                if request.method == "POST":
                    form = await request.form()
                    sent = form.get(CSRF_FIELD)
                    if not session.csrf_matches(sent if isinstance(sent, str) else None):
                        raise ConsoleRefusal(
                            "the form's security token is missing or wrong (an old tab, or a "
                            "post from another site): nothing was done; open the page again"
                        )
                return await handler(request)

            return guarded

    return SessionRoute
