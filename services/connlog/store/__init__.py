"""PostgreSQL data access: one module per store, all SQL parameterised."""
