"""The demo's data files (roster.csv, cases.toml), read with importlib.resources."""
