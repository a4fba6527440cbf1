"""escli: a fast, dependable command-line search toolkit for Elasticsearch."""

__version__ = "0.1.0"
