"""docs/contracts/<system>.openapi.json: each system's REST contract as the OpenAPI
document an integrator implements, written from the very routes the sandbox serves.

    python -m o2c_sandbox.openapi [FOLDER]

writes the four documents (into the repository's docs/contracts/ by default). Run it
after changing a contract (`adapters/<system>/http_contract.py`) or a model it carries,
and commit the documents: tests/http/test_contract_documents.py fails while they are
stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from adapters.http.contract import Contract
from o2c_sandbox.routes import CallLog, contract_app
from o2c_sandbox.serve import CONTRACTS

COMMAND = "python -m o2c_sandbox.openapi"
DOCUMENTS = Path(__file__).resolve().parents[1] / "docs" / "contracts"


class _Unserved:
    """Stands in for a system's adapter: a document is written, no request served."""

    def __getattr__(self, name: str) -> Callable[..., Awaitable[NoReturn]]:
        async def unserved(*args: object) -> NoReturn:
            raise NotImplementedError(f"{name}: only documented here")

        return unserved


def document(contract: Contract) -> dict[str, Any]:
    """The contract's OpenAPI document, as the sandbox serves it at /openapi.json."""
    return contract_app(contract, _Unserved(), CallLog()).openapi()


def rendered(contract: Contract) -> str:
    """The document as committed: keys sorted, indented by 2, a newline at the end."""
    return json.dumps(document(contract), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def document_path(system: str, folder: Path = DOCUMENTS) -> Path:
    return folder / f"{system}.openapi.json"


def main(argv: Sequence[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else list(argv)
    folder = Path(arguments[0]) if arguments else DOCUMENTS
    folder.mkdir(parents=True, exist_ok=True)
    for system, contract in CONTRACTS.items():
        path = document_path(system, folder)
        path.write_text(rendered(contract), encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
