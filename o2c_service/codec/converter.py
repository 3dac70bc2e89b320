"""The data converter every client and worker of the project uses."""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from o2c_service.codec.encryption import EncryptionCodec
from o2c_service.codec.keys import CodecKeys


def data_converter(keys: CodecKeys) -> DataConverter:
    """Pydantic models as JSON, encrypted under `keys`.

    Failures' messages and stack traces move into their (encrypted) attributes too: a
    business error's message can name the customer or an amount. Workflow ids, activity
    and signal names, and search attributes stay in clear (docs/security.md)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
