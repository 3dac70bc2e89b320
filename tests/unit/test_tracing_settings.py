"""Which `OTEL_*` settings turn traces on, and the ones o2c refuses (docs/operations.md)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import SERVICE_NAME

from o2c_service.observability.tracing import Tracing, TracingSettingError, exporter_names


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        pytest.param({}, [], id="nothing set: off"),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"], id="otlp"),
        pytest.param({"OTEL_TRACES_EXPORTER": "console"}, ["console"], id="console"),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"], id="both"),
        pytest.param({"OTEL_TRACES_EXPORTER": "none"}, [], id="none"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"], id="an endpoint"
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"},
            ["otlp"],
            id="a traces endpoint",
        ),
        pytest.param(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                "OTEL_TRACES_EXPORTER": "none",
            },
            [],
            id="none wins over an endpoint",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, [], id="sdk disabled"
        ),
    ],
)
def test_traces_are_off_unless_the_otel_variables_ask(
    environ: dict[str, str], exporters: list[str]
) -> None:
    assert exporter_names(environ) == exporters
    tracing = Tracing.from_environment(environ, "o2c")
    assert (tracing is None) == (not exporters)
    if tracing is not None:
        tracing.shutdown()


def test_the_process_is_named_unless_otel_service_name_names_it() -> None:
    named = Tracing.from_environment({"OTEL_TRACES_EXPORTER": "console"}, "o2c-worker")
    renamed = Tracing.from_environment(
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "orders-eu"}, "o2c-worker"
    )
    assert named is not None and renamed is not None
    assert named.provider.resource.attributes[SERVICE_NAME] == "o2c-worker"
    assert renamed.provider.resource.attributes[SERVICE_NAME] == "orders-eu"
    named.shutdown()
    renamed.shutdown()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, "grpc"),
    ],
)
def test_an_exporter_or_protocol_o2c_lacks_is_refused_by_name(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(TracingSettingError, match=named):
        Tracing.from_environment(environ, "o2c")
