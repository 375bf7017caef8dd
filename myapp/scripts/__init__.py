"""Console scripts (see ``[project.scripts]`` in pyproject.toml)."""
