"""Who may call the API: keys (`keys`), the rule of each route (`rules`), and the check
every request passes (`guard`). docs/api-keys.md is the user's side of it."""
