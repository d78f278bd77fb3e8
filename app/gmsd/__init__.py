"""gmsd: the Genesys Mobile Services Service API and Context Services API on Redis."""

__version__ = "0.1.0"
