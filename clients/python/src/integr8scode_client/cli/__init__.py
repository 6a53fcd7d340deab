"""The `integr8scode` command line."""
