"""The only code that knows an external system: CRM, billing, logistics, payments.

`protocols` says what each system must do, `models` what crosses the boundary,
`errors` how a system says no; `local` holds the embedded implementations.
"""
