"""Domain values every layer may use (workflows, activities, adapters, service): money
rules today. It imports none of them, so nothing here can make an import cycle."""
