"""Read and validate a project's stacktrail audit archive."""
