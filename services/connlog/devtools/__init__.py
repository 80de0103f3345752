"""Developer tools: contract code generation and checks."""
