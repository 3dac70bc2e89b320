"""What the tests share: Temporal servers, the stack, stub activities, harnesses, recorders."""
