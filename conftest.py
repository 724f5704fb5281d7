# Root conftest: makes the repository root importable so tests can `import core`.
