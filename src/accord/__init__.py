"""accord: user provisioning across PostgreSQL and an identity provider."""

__version__ = "0.1.0"
