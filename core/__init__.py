"""What every app uses and no app owns (DESIGN.md, "Layers"): the error tree, the access
policy, the import machinery, the typed environment readers (env). It imports no app
(the contract in pyproject.toml)."""
