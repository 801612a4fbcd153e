"""SCIM 2.0 inbound: Okta and Microsoft Entra ID provision into an organization."""
