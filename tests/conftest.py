"""Hub's fixtures come from hub.testing (installed as a pytest plugin)."""
