"""Step modules: the work of each pipeline stage, as plain functions with explicit arguments."""
