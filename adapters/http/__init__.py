"""The four systems over HTTP: one REST contract per system, an httpx client for it.

Each system's contract (`adapters/<system>/http_contract.py`) lists its operations
declaratively (`Operation`); the same list drives the client adapter
(`adapters/<system>/http.py`, over `SystemClient`), the sandbox server
(`o2c_sandbox`) and the OpenAPI document in `docs/contracts/`, so the three cannot
drift apart. What a status code means to the orchestrator is decided in one place,
`SystemClient.call`; docs/remote-systems.md tells an integrator the rules.
"""
