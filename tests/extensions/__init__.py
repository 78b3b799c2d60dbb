"""Test-only extensions: a constraint (and a recorder) added in one file each, run from YAML."""
