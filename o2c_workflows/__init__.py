"""Order workflows and the domain models they carry (deterministic code only)."""
