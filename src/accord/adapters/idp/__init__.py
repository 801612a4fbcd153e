"""Identity providers: one module per vendor, all behind domain.ports.IdentityProvider."""
