// Reading users' files: CSV/TSV/JSONL tables and YAML/JSON config files.
