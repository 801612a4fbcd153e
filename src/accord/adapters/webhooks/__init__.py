"""Outgoing webhooks: signed HTTP deliveries (Standard Webhooks v1)."""
