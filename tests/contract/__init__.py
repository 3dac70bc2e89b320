"""Each system protocol and its implementations (local adapters, fault injection)."""
