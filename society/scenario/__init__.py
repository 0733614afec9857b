"""The scenario schema (typed, validated) and its YAML loader."""
