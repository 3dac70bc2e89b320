"""Pure rules, no server: money, amounts, presentation."""
