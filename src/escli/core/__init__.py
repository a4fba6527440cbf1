"""Use cases as async functions: they take a client, a cache, a profiler and plain params and return data.

Nothing here prints or parses argv.
"""
