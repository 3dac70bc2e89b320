"""The support console: server-rendered pages over the same order service and reports
as the JSON API, mounted by the API at `/console` (docs/console.md).

A mounted app of its own, because its forms are what the API refuses on purpose
(`application/x-www-form-urlencoded` posts, 415 there) and it authenticates by
session cookie, not by `Authorization` header: the API's rules and checks stay as
they are for every API route, and every console page has its own rule
(`CONSOLE_RULES`), checked by `o2c_service.console.guard`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import FormData

from o2c_domain.money import normalise
from o2c_service.access.guard import Authenticator
from o2c_service.access.keys import hash_key
from o2c_service.access.rules import CONSOLE_READ, CONSOLE_RULES, rule_for
from o2c_service.console.actions import ACTIONS, FINISHED, Action, new_id, offered
from o2c_service.console.charts import bars
from o2c_service.console.forms import Checked, FormState, check, text
from o2c_service.console.guard import (
    CSRF_FIELD,
    ConsoleRefusal,
    console_route_class,
    session_of,
)
from o2c_service.console.queue import AGES, QueueFilter, read_queue, words_for
from o2c_service.console.sessions import (
    COOKIE,
    COOKIE_PATH,
    SIGN_IN_COOKIE,
    ConsoleSessions,
    Session,
)
from o2c_service.events import CANCEL, RELEASE, RETRY, OrderEvent
from o2c_service.orders import BULK_CONCURRENCY, OrderService
from o2c_service.outcomes import EventStillApplying, OrderError
from o2c_service.problems import order_problem
from o2c_service.reports import DEFAULT_SAMPLE, BillingUnavailable, ReportService, SummaryReport
from o2c_service.store import ApiStore
from o2c_workflows.messages import CancelRequest, SupportAck, SupportAction
from o2c_workflows.models import Identifier, OrderStatus
from o2c_workflows.state import OrderState, UndoKind

HERE = Path(__file__).parent
IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)
STATUS_OPTIONS = [("any", "Any status"), *((s.value, s.value) for s in OrderStatus)]
AGE_OPTIONS = [("", "Any time"), ("1h", "1 hour"), ("1d", "1 day"), ("7d", "7 days")]
BULK_LIMIT = 200
UNDO_WORDS = {
    UndoKind.RELEASE_RESERVATION: "release the stock reservation",
    UndoKind.CANCEL_SHIPMENT: "cancel the shipment request with logistics",
    UndoKind.VOID_INVOICE: "void the invoice (or credit it, once paid in part)",
    UndoKind.REFUND_PAYMENT: "refund the captured payment",
    UndoKind.VOID_AUTHORISATION: "void the card authorisation",
}
"""What each undo of compensation does, for people (o2c_workflows/order/compensation.py)."""


def undoes(state: OrderState) -> list[str]:
    """What cancelling the order would undo, in the order compensation undoes it."""
    return [f"{UNDO_WORDS[record.undo]} ({record.step})" for record in reversed(state.undo)]


def money(amount: Decimal, currency: str, with_currency: bool = True) -> str:
    """An amount at its currency's scale (`0` -> `0.00 EUR`), never rounded."""
    try:
        shown = str(normalise(Decimal(amount), currency))
    except (KeyError, ValueError):
        shown = str(amount)
    return f"{shown} {currency}" if with_currency else shown


def order_path(order_id: str) -> str:
    return f"{COOKIE_PATH}/orders/{quote(order_id, safe=':')}"


def _values(form: FormData) -> dict[str, str]:
    return {
        name: value for name, value in form.items() if isinstance(value, str) and name != CSRF_FIELD
    }


def _safe_next(target: str | None) -> str:
    """Back to a console page only (never to another site after signing in)."""
    if target and target.startswith(COOKIE_PATH + "/") and not target.startswith("//"):
        return target
    return COOKIE_PATH + "/"


def create_console(
    store: ApiStore,
    authenticator: Authenticator,
    orders: Callable[[], OrderService],
    reports: Callable[[], ReportService],
    ui_link: Callable[[str], str],
) -> FastAPI:
    """The console app, to mount at `/console`. `orders` and `reports` are the API's own
    services (made when the API starts)."""
    sessions = ConsoleSessions(store)
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.router.route_class = console_route_class(sessions, authenticator)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(order_path=order_path, words_for=words_for)
    templates.env.filters["as_option"] = lambda value: (value, value)
    templates.env.filters["money"] = money

    async def page(
        request: Request, name: str, context: dict[str, Any], status_code: int = status.HTTP_200_OK
    ) -> Response:
        session: Session | None = getattr(request.state, "session", None)
        flash = await sessions.take_flash(session.session_id) if session else None
        return templates.TemplateResponse(
            request,
            name,
            {
                "session": session,
                "flash": flash,
                "csrf_field": CSRF_FIELD,
                "can_act": session is not None and session.caller.role in ACT_ROLES,
                **context,
            },
            status_code=status_code,
        )

    @console.exception_handler(ConsoleRefusal)
    async def refused(request: Request, error: ConsoleRefusal) -> Response:
        return await page(
            request,
            "error.html",
            {"title": "Not allowed", "message": str(error)},
            error.status_code,
        )

    @console.exception_handler(OrderError)
    async def order_error(request: Request, error: OrderError) -> Response:
        problem = order_problem(error)
        return await page(
            request,
            "error.html",
            {"title": problem.problem_type.title, "message": str(error)},
            problem.problem_type.status,
        )

    # -- signing in and out ---------------------------------------------------------------

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    @console.get("/sign-in")
    async def sign_in_form(
        request: Request, next: str | None = None, note: str | None = None
    ) -> Response:
        token = secrets.token_urlsafe(24)
        response = await page(
            request,
            "sign_in.html",
            {"next": _safe_next(next), "note": note, "token": token, "form": FormState()},
        )
        response.set_cookie(
            SIGN_IN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path=COOKIE_PATH,
        )
        return response

    @console.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        values = _values(form)
        sent, expected = values.get("token"), request.cookies.get(SIGN_IN_COOKIE)
        if not sent or not expected or not secrets.compare_digest(sent, expected):
            raise ConsoleRefusal(
                "the sign-in form's token is missing or wrong: open the sign-in page again"
            )
        key = values.get("api_key", "").strip()
        state = FormState(values={"next": values.get("next", "")})
        found = None
        if not key:
            state.add("api_key", "Enter your API key")
        else:
            try:
                found = await authenticator.caller(f"Bearer {key}")
            except HTTPException:
                state.add("api_key", "This key is not known, or has been revoked")
        if found is not None and found.role not in CONSOLE_READ:
            state.add(
                "api_key",
                f"A {found.role.value} key is for systems, not people: "
                "sign in with a support or viewer key",
            )
        if found is None or state.errors:
            return await page(
                request,
                "sign_in.html",
                {
                    "next": _safe_next(values.get("next")),
                    "note": None,
                    "token": sent,
                    "form": state,
                },
                401,
            )
        session_id = await sessions.open(hash_key(key))
        response = RedirectResponse(_safe_next(values.get("next")), status.HTTP_303_SEE_OTHER)
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=int(sessions.lifetime.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path=COOKIE_PATH,
        )
        response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
        return response

    @console.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await sessions.end(session_of(request).session_id)
        target = f"{COOKIE_PATH}/sign-in?note={quote('Signed out.')}"
        response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response

    # -- the work queue and bulk actions ------------------------------------------------

    @console.get("/")
    async def work_queue(
        request: Request,
        status_filter: Annotated[str | None, Query(alias="status")] = None,
        customer: str | None = None,
        reason: str | None = None,
        age: str | None = None,
    ) -> Response:
        form = FormState(
            values={
                "status": status_filter or "OnHold",
                "customer": customer or "",
                "reason": reason or "",
                "age": age or "",
            }
        )
        wanted_status: OrderStatus | None = None
        if status_filter != "any":
            try:
                wanted_status = OrderStatus(status_filter or "OnHold")
            except ValueError:
                form.add("status", "Choose a status from the list")
        for name, value in (("customer", customer), ("reason", reason)):
            if value:
                check_identifier(form, name, value)
        if age and age not in AGES:
            form.add("age", "Choose an age from the list")
        queue = None
        if not form.errors:
            queue = await read_queue(
                orders(),
                QueueFilter(
                    status=wanted_status,
                    customer_id=customer or None,
                    hold_reason=reason or None,
                    age=age or None,
                ),
            )
        return await page(
            request,
            "queue.html",
            {
                "form": form,
                "queue": queue,
                "status_options": STATUS_OPTIONS,
                "age_options": AGE_OPTIONS,
                "now": datetime.now(UTC),
            },
            422 if form.errors else 200,
        )

    def check_identifier(form: FormState, name: str, value: str) -> None:
        try:
            IDENTIFIER.validate_python(value)
        except ValidationError as invalid:
            form.add(name, invalid.errors()[0]["msg"])

    async def read_selected(order_ids: list[str]) -> list[tuple[str, OrderState | None]]:
        limit = asyncio.Semaphore(BULK_CONCURRENCY)

        async def one(order_id: str) -> tuple[str, OrderState | None]:
            async with limit:
                try:
                    return order_id, await orders().get(order_id)
                except OrderError:
                    return order_id, None

        return list(await asyncio.gather(*(one(order_id) for order_id in order_ids)))

    def bulk_selection(form: FormData) -> tuple[str, list[str]]:
        action = str(form.get("action") or "")
        if action not in ("retry", "release", "cancel"):
            raise ConsoleRefusal("choose retry, release or cancel", status.HTTP_400_BAD_REQUEST)
        order_ids = list(dict.fromkeys(str(value) for value in form.getlist("order_id")))
        if len(order_ids) > BULK_LIMIT:
            raise ConsoleRefusal(
                f"select at most {BULK_LIMIT} orders at once", status.HTTP_400_BAD_REQUEST
            )
        return action, order_ids

    async def preview(
        request: Request,
        action: str,
        order_ids: list[str],
        form: FormState,
        status_code: int = status.HTTP_200_OK,
    ) -> Response:
        selected = await read_selected(order_ids)
        return await page(
            request,
            "bulk_preview.html",
            {"action": action, "selected": selected, "undoes": undoes, "form": form},
            status_code,
        )

    @console.post("/bulk/preview")
    async def bulk_preview(request: Request) -> Response:
        action, order_ids = bulk_selection(await request.form())
        if not order_ids:
            await sessions.flash(session_of(request).session_id, "Select at least one order first.")
            return RedirectResponse(COOKIE_PATH + "/", status.HTTP_303_SEE_OTHER)
        return await preview(request, action, order_ids, FormState())

    @console.post("/bulk/confirm")
    async def bulk_confirm(request: Request) -> Response:
        form = await request.form()
        action, order_ids = bulk_selection(form)
        values, actor = _values(form), session_of(request).caller.actor
        checked: Checked[Any] = (
            check(
                CancelRequest,
                {"reason": text(values, "reason"), "actor": actor},
                FormState(values=values),
            )
            if action == "cancel"
            else check(
                SupportAction,
                {"note": text(values, "note"), "actor": actor},
                FormState(values=values),
            )
        )
        if checked.message is None or not order_ids:
            if not order_ids:
                checked.form.add("form", "No orders were selected")
            return await preview(request, action, order_ids, checked.form, 422)
        outcomes = await orders().act_on_each(order_ids, BULK_EVENTS[action], checked.message)
        return await page(request, "bulk_outcome.html", {"action": action, "outcomes": outcomes})

    # -- one order --------------------------------------------------------------------------

    def blank_forms(state: OrderState) -> dict[str, FormState]:
        ship = {f"ship_{i}": str(line.to_ship) for i, line in enumerate(state.lines)}
        return {
            "ship": FormState(values={"scope": "all", **ship}),
            "pay": FormState(
                values={"payment_id": new_id("PAY"), "currency": state.order.currency}
            ),
            "amend": FormState(values={"event_id": new_id("AMD")}),
            "return": FormState(values={"return_id": new_id("RMA"), "resolution": "refund"}),
            "retry": FormState(),
            "release": FormState(),
            "cancel": FormState(),
        }

    async def order_page(
        request: Request,
        state: OrderState,
        forms: dict[str, FormState],
        rejected: tuple[str, str] | None = None,
        status_code: int = status.HTTP_200_OK,
        sent: str | None = None,
    ) -> Response:
        """`sent`: the form just sent, shown again (with its errors) even if the order's
        state would not offer it now."""
        shown = offered(state)
        if sent is not None and sent not in shown:
            shown.append(sent)
        return await page(
            request,
            "order.html",
            {
                "state": state,
                "forms": forms,
                "actions": ACTIONS,
                "offered": shown,
                "rejected": rejected,
                "ui_link": ui_link(state.order_id),
                "undo_lines": undoes(state),
                "finished": state.status in FINISHED,
            },
            status_code,
        )

    @console.get("/orders/{order_id}")
    async def show_order(request: Request, order_id: str) -> Response:
        state = await orders().get(order_id)
        return await order_page(request, state, blank_forms(state))

    @console.post("/orders/{order_id}/{action}")
    async def act(request: Request, order_id: str, action: str) -> Response:
        chosen: Action | None = ACTIONS.get(action)
        if chosen is None:
            raise ConsoleRefusal(f"there is no action '{action}'", status.HTTP_404_NOT_FOUND)
        state = await orders().get(order_id)
        values = _values(await request.form())
        checked = chosen.build(state, values, session_of(request).caller.actor)
        forms = blank_forms(state)
        forms[action] = checked.form
        if checked.message is None:
            return await order_page(request, state, forms, None, 422, sent=action)
        session_id = session_of(request).session_id
        try:
            ack = await orders().send(chosen.event, order_id, checked.message)
        except EventStillApplying as accepted:
            await sessions.flash(session_id, str(accepted))
        except OrderError as error:
            problem = order_problem(error)
            if problem.problem_type.status in (status.HTTP_409_CONFLICT, 422):
                return await order_page(
                    request,
                    await orders().get(order_id),
                    forms,
                    (action, str(error)),
                    problem.problem_type.status,
                    sent=action,
                )
            raise
        else:
            await sessions.flash(session_id, f"{chosen.title}: {ack.message}")
        return RedirectResponse(order_path(order_id), status.HTTP_303_SEE_OTHER)

    # -- the dashboard -----------------------------------------------------------------------

    @console.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        report: SummaryReport | None = None
        unavailable = None
        try:
            report = await reports().summary(None, None, DEFAULT_SAMPLE)
        except BillingUnavailable as error:
            unavailable = str(error)
        return await page(
            request,
            "dashboard.html",
            {"report": report, "unavailable": unavailable, "charts": charts(report)},
        )

    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    require_console_rules(console)
    return console


BULK_EVENTS: dict[str, OrderEvent[Any, SupportAck]] = {
    "retry": RETRY,
    "release": RELEASE,
    "cancel": CANCEL,
}
ACT_ROLES = rule_for("POST", "/orders/{order_id}/{action}", CONSOLE_RULES)


def charts(report: SummaryReport | None) -> dict[str, Any]:
    """The dashboard's pictures of the report's figures."""
    if report is None:
        return {}
    ageing = {
        currency: bars(
            f"Open receivables by age, {currency}",
            [
                ("not yet due", figures.ageing.current),
                ("1-30 days", figures.ageing.days_1_30),
                ("31-60 days", figures.ageing.days_31_60),
                ("61-90 days", figures.ageing.days_61_90),
                ("over 90 days", figures.ageing.days_over_90),
            ],
            f" {currency}",
        )
        for currency, figures in report.receivables.items()
    }
    return {
        "status": bars(
            "Orders by status", [(s.value, n) for s, n in report.orders_by_status.items()]
        ),
        "cycle": bars(
            "Median hours per stage",
            [
                (stage.stage, stage.p50_hours)
                for stage in report.cycle_times
                if stage.p50_hours is not None
            ],
            " h",
        ),
        "fallout": bars("Held orders by reason", sorted(report.fallout.on_hold_by_reason.items())),
        "ageing": ageing,
    }


def require_console_rules(console: FastAPI) -> None:
    """Every console route has a rule (the route class looked each up when it was added),
    and the static mount is public: only then may the API mount it as `SESSION`."""
    for route in console.routes:
        path = getattr(route, "path", "")
        if path == "/static":
            rule_for("GET", path, CONSOLE_RULES)
        elif not hasattr(route, "rule") and path not in ("",):
            raise ValueError(f"console route {path} was added without the console's route class")
    console.state.checks_sessions = True
