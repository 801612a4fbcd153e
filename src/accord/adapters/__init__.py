"""Adapters: the database, identity providers and mail, plugged into the services' ports."""
