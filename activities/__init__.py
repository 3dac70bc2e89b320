"""Activities: the workflow's side effects, each a thin call to one adapter."""
