"""What the HTTP adapters make of every answer a remote system can give, or fail to give.

Billing's client (`HttpBilling`) talks to a scripted server on a real loopback socket,
through a write (`create_invoice`), a read (`open_balance`) and a lookup by key
(`find_invoice`). Each case checks the error the workflow's activities will see, what
its message tells a person, and that exactly one request crossed the wire: the adapter
never retries, Temporal's retry policy does.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.billing.http import HttpBilling
from adapters.billing.models import Invoice, InvoiceLine, InvoiceRequest, InvoiceStatus, OpenBalance
from adapters.errors import (
    BusinessError,
    RateLimited,
    SystemFailure,
    SystemTimeout,
    SystemUnavailable,
    UnknownOutcome,
)
from adapters.http.client import Remote
from tests.support.scripted_system import (
    Answer,
    ScriptedSystem,
    hanging_up,
    problem,
    refused_port,
    scripted_system,
    unresponsive_port,
)

REQUEST = InvoiceRequest(
    idempotency_key="invoice-webshop:SO-77-1",
    order_id="webshop:SO-77",
    account_id="ACC-CUST-ACME",
    currency="EUR",
    invoice_date=date(2026, 3, 2),
    due_date=date(2026, 4, 1),
    lines=[
        InvoiceLine(
            sku="SKU-WIDGET", quantity=2, unit_price=Decimal("10.00"), amount=Decimal("20.00")
        )
    ],
)
INVOICE = Invoice(
    invoice_id="INV-1",
    order_id=REQUEST.order_id,
    account_id=REQUEST.account_id,
    currency="EUR",
    amount=Decimal("20.00"),
    balance=Decimal("20.00"),
    invoice_date=REQUEST.invoice_date,
    due_date=REQUEST.due_date,
    status=InvoiceStatus.OPEN,
)
BALANCE = OpenBalance(customer_id="CUST-ACME", currency="EUR", amount=Decimal("20.00"))


@dataclass(frozen=True)
class Exchange:
    """One adapter call, and how it shows in messages."""

    name: str
    method: str
    path: str
    call: Callable[[HttpBilling], Awaitable[object]]

    def __str__(self) -> str:
        return self.name


WRITE = Exchange("write", "POST", "/invoices", lambda billing: billing.create_invoice(REQUEST))
READ = Exchange(
    "read",
    "GET",
    "/customers/{customer_id}/open-balance",
    lambda billing: billing.open_balance("CUST-ACME"),
)
LOOKUP = Exchange(
    "lookup",
    "GET",
    "/invoices/by-key/{idempotency_key}",
    lambda billing: billing.find_invoice(REQUEST.idempotency_key),
)


@pytest.fixture
async def system() -> AsyncIterator[tuple[ScriptedSystem, str]]:
    async with scripted_system() as served:
        yield served


@pytest.fixture
async def billing(system: tuple[ScriptedSystem, str]) -> AsyncIterator[HttpBilling]:
    # Loopback connects at once, even on a busy machine, unless the test means otherwise.
    client = HttpBilling(Remote(system[1], connect_timeout=10, read_timeout=0.5))
    yield client
    await client.aclose()


def named(value: object) -> str:
    """A test id: an exchange's name, an error class's name."""
    return getattr(value, "__name__", str(value))


def assert_names_the_exchange(error: Exception, exchange: Exchange, status: int | None) -> None:
    message = str(error)
    assert message.startswith(f"billing {exchange.method} {exchange.path}: "), message
    if status is not None:
        assert str(status) in message, message


# --- answers with a status ------------------------------------------------------------

GATEWAY_PAGE = Answer(502, "<html>Bad Gateway</html>", media_type="text/html")
SERVER_ERROR = problem(500, "internal_error", "a database deadlock")
UNREADABLE = Answer(200, json.dumps({"id": "INV-1"}))


@pytest.mark.parametrize(
    ("answer", "exchange", "raised"),
    [
        pytest.param(GATEWAY_PAGE, WRITE, SystemUnavailable, id="502-write"),
        pytest.param(GATEWAY_PAGE, READ, SystemUnavailable, id="502-read"),
        pytest.param(problem(503, "maintenance", "back at 6"), WRITE, SystemUnavailable, id="503"),
        pytest.param(problem(504, "upstream", "slow"), WRITE, UnknownOutcome, id="504-write"),
        pytest.param(problem(504, "upstream", "slow"), READ, SystemTimeout, id="504-read"),
        pytest.param(problem(504, "upstream", "slow"), LOOKUP, SystemTimeout, id="504-lookup"),
        pytest.param(SERVER_ERROR, WRITE, SystemFailure, id="500-with-a-code-write"),
        pytest.param(SERVER_ERROR, READ, SystemFailure, id="500-with-a-code-read"),
        pytest.param(Answer(501, ""), READ, SystemFailure, id="501-empty"),
        pytest.param(Answer(400, "bad", media_type="text/plain"), WRITE, SystemFailure, id="400"),
        pytest.param(Answer(401, ""), READ, SystemFailure, id="401-without-a-code"),
        pytest.param(problem(401, "unauthorized", "token"), WRITE, SystemFailure, id="401-coded"),
        pytest.param(problem(403, "forbidden", "not yours"), READ, SystemFailure, id="403-coded"),
        pytest.param(
            Answer(404, json.dumps({"detail": "Not Found"})),
            LOOKUP,
            SystemFailure,
            id="404-lookup-without-a-code",
        ),
        pytest.param(
            Answer(302, "", {"Location": "/elsewhere"}), READ, SystemFailure, id="302-not-followed"
        ),
        pytest.param(UNREADABLE, WRITE, UnknownOutcome, id="2xx-unreadable-write"),
        pytest.param(UNREADABLE, READ, SystemFailure, id="2xx-unreadable-read"),
        pytest.param(
            Answer(201, "<ok/>", media_type="text/xml"),
            LOOKUP,
            SystemFailure,
            id="2xx-not-json-lookup",
        ),
    ],
)
async def test_a_failing_answer_is_the_system_error_its_status_means(
    system: tuple[ScriptedSystem, str],
    billing: HttpBilling,
    answer: Answer,
    exchange: Exchange,
    raised: type[SystemFailure],
) -> None:
    scripted, _ = system
    scripted.answer = answer

    with pytest.raises(SystemFailure) as caught:
        await exchange.call(billing)

    assert type(caught.value) is raised
    assert_names_the_exchange(caught.value, exchange, answer.status)
    assert len(scripted.received) == 1


@pytest.mark.parametrize(
    ("answer", "exchange"),
    [
        pytest.param(
            problem(422, "currency_mismatch", "the account bills in USD"), WRITE, id="422-write"
        ),
        pytest.param(
            problem(409, "invoice_has_payments", "INV-1 has cash applied"), WRITE, id="409-write"
        ),
        pytest.param(
            problem(404, "customer_not_found", "no CUST-ACME in billing"), READ, id="404-read"
        ),
        pytest.param(
            problem(404, "account_not_found", "no ACC-CUST-ACME"),
            LOOKUP,
            id="404-lookup-another-code",
        ),
        pytest.param(
            problem(404, "not_found", "no such customer here"),
            READ,
            id="404-not-found-on-a-read-that-is-no-lookup",
        ),
    ],
)
async def test_a_4xx_problem_with_a_code_is_a_business_refusal(
    system: tuple[ScriptedSystem, str], billing: HttpBilling, answer: Answer, exchange: Exchange
) -> None:
    scripted, _ = system
    scripted.answer = answer
    sent = json.loads(answer.body)

    with pytest.raises(BusinessError) as caught:
        await exchange.call(billing)

    assert (caught.value.code, caught.value.message) == (sent["code"], sent["detail"])
    assert len(scripted.received) == 1


async def test_a_lookup_answered_404_not_found_means_nothing_was_made(
    system: tuple[ScriptedSystem, str], billing: HttpBilling
) -> None:
    scripted, _ = system
    scripted.answer = problem(404, "not_found", "no invoice with this key")

    assert await billing.find_invoice(REQUEST.idempotency_key) is None
    assert [(seen.method, seen.path) for seen in scripted.received] == [
        ("GET", f"/invoices/by-key/{REQUEST.idempotency_key}")
    ]


async def test_a_2xx_answer_is_the_result(
    system: tuple[ScriptedSystem, str], billing: HttpBilling
) -> None:
    scripted, _ = system
    scripted.answer = Answer(201, INVOICE.model_dump_json())
    assert await billing.create_invoice(REQUEST) == INVOICE
    assert await billing.find_invoice(REQUEST.idempotency_key) == INVOICE

    scripted.answer = Answer(200, BALANCE.model_dump_json())
    assert await billing.open_balance("CUST-ACME") == BALANCE
    assert [(seen.method, seen.path) for seen in scripted.received] == [
        ("POST", "/invoices"),
        ("GET", f"/invoices/by-key/{REQUEST.idempotency_key}"),
        ("GET", "/customers/CUST-ACME/open-balance"),
    ]


# --- rate limits ----------------------------------------------------------------------


def http_date(when: datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


@pytest.mark.parametrize("exchange", [WRITE, READ], ids=str)
async def test_429_is_rate_limited_for_as_long_as_retry_after_says_in_seconds(
    system: tuple[ScriptedSystem, str], billing: HttpBilling, exchange: Exchange
) -> None:
    scripted, _ = system
    scripted.answer = problem(429, "rate_limited", "100 a minute", **{"Retry-After": "7"})

    with pytest.raises(RateLimited) as caught:
        await exchange.call(billing)

    assert caught.value.retry_after == timedelta(seconds=7)
    assert_names_the_exchange(caught.value, exchange, 429)
    assert len(scripted.received) == 1


async def test_429_is_rate_limited_until_the_http_date_retry_after_names(
    system: tuple[ScriptedSystem, str], billing: HttpBilling
) -> None:
    scripted, _ = system
    until = datetime.now(UTC) + timedelta(minutes=2)
    scripted.answer = problem(429, "rate_limited", "slow down", **{"Retry-After": http_date(until)})

    with pytest.raises(RateLimited) as caught:
        await billing.create_invoice(REQUEST)

    # An HTTP date has whole seconds, and some time passed since `until` was taken.
    assert caught.value.retry_after is not None
    assert timedelta(seconds=115) <= caught.value.retry_after <= timedelta(minutes=2)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param({}, None, id="absent"),
        pytest.param({"Retry-After": "soon"}, None, id="unreadable"),
        pytest.param(
            {"Retry-After": http_date(datetime(2001, 1, 1, tzinfo=UTC))},
            timedelta(0),
            id="a-date-gone-by",
        ),
    ],
)
async def test_429_without_a_usable_retry_after_leaves_the_delay_to_the_retry_policy(
    system: tuple[ScriptedSystem, str],
    billing: HttpBilling,
    header: dict[str, str],
    expected: timedelta | None,
) -> None:
    scripted, _ = system
    scripted.answer = problem(429, "rate_limited", "slow down", **header)

    with pytest.raises(RateLimited) as caught:
        await billing.open_balance("CUST-ACME")

    assert caught.value.retry_after == expected


# --- no answer at all -----------------------------------------------------------------


async def failure_of(remote: Remote, exchange: Exchange) -> SystemFailure:
    """What `exchange` raises through a billing client of its own to `remote`."""
    billing = HttpBilling(remote)
    try:
        with pytest.raises(SystemFailure) as caught:
            await exchange.call(billing)
    finally:
        await billing.aclose()
    return caught.value


@pytest.mark.parametrize(
    ("exchange", "raised"),
    [(WRITE, UnknownOutcome), (READ, SystemTimeout), (LOOKUP, SystemTimeout)],
    ids=named,
)
async def test_no_answer_within_the_read_timeout_is_unknown_for_a_write_and_a_timeout_for_a_read(
    system: tuple[ScriptedSystem, str], exchange: Exchange, raised: type[SystemFailure]
) -> None:
    scripted, url = system
    scripted.holding = True
    failure = await failure_of(Remote(url, read_timeout=0.2), exchange)

    assert type(failure) is raised
    assert_names_the_exchange(failure, exchange, None)
    assert "nothing within 0.2 s" in str(failure)
    if raised is UnknownOutcome:
        assert "may have taken effect" in str(failure)
    assert len(scripted.received) == 1


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
@pytest.mark.parametrize(
    ("exchange", "raised"), [(WRITE, UnknownOutcome), (READ, SystemUnavailable)], ids=named
)
async def test_a_connection_dropped_after_the_request_is_unknown_for_a_write(
    reset: bool, exchange: Exchange, raised: type[SystemFailure]
) -> None:
    async with hanging_up(reset=reset) as server:
        failure = await failure_of(Remote(server.url), exchange)

    assert type(failure) is raised
    assert_names_the_exchange(failure, exchange, None)
    assert "no answer" in str(failure)
    assert len(server.requests) == 1


@pytest.mark.parametrize("exchange", [WRITE, READ], ids=str)
async def test_a_refused_connection_is_unavailable_even_for_a_write(exchange: Exchange) -> None:
    failure = await failure_of(Remote(f"http://127.0.0.1:{refused_port()}"), exchange)

    assert type(failure) is SystemUnavailable
    assert_names_the_exchange(failure, exchange, None)
    assert "could not connect" in str(failure)


@pytest.mark.parametrize("exchange", [WRITE, READ], ids=str)
async def test_a_connect_timeout_is_a_timeout_even_for_a_write(exchange: Exchange) -> None:
    with unresponsive_port() as port:
        failure = await failure_of(
            Remote(f"http://127.0.0.1:{port}", connect_timeout=0.2), exchange
        )

    assert type(failure) is SystemTimeout
    assert_names_the_exchange(failure, exchange, None)
    assert "could not connect" in str(failure)
    assert "not connected within 0.2 s" in str(failure)


# --- what the client sends ------------------------------------------------------------


async def test_a_write_carries_its_idempotency_key_and_its_request_as_json(
    system: tuple[ScriptedSystem, str], billing: HttpBilling
) -> None:
    scripted, _ = system
    scripted.answer = Answer(200, INVOICE.model_dump_json())
    await billing.create_invoice(REQUEST)
    scripted.answer = Answer(200, BALANCE.model_dump_json())
    await billing.open_balance("CUST-ACME")

    write, read = scripted.received
    assert write.headers["idempotency-key"] == REQUEST.idempotency_key
    assert write.headers["content-type"] == "application/json"
    assert InvoiceRequest.model_validate_json(write.body) == REQUEST
    assert "idempotency-key" not in read.headers
    assert "authorization" not in write.headers and "authorization" not in read.headers


async def test_a_token_is_sent_as_a_bearer_on_every_request(
    system: tuple[ScriptedSystem, str],
) -> None:
    scripted, url = system
    scripted.answer = problem(404, "not_found", "none")
    billing = HttpBilling(Remote(url, token="s3cret-billing"))
    try:
        await billing.find_invoice("any-key")
        with pytest.raises(BusinessError):
            await billing.create_invoice(REQUEST)
    finally:
        await billing.aclose()

    assert [seen.headers["authorization"] for seen in scripted.received] == [
        "Bearer s3cret-billing",
        "Bearer s3cret-billing",
    ]
