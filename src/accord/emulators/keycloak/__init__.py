"""A Keycloak emulator: the Admin REST API's user endpoints and the client-credentials token
endpoint of one realm, in memory, with fault injection.

It follows ``docs/idp/keycloak.md`` (comments link to its headings): Keycloak's paths,
status codes and error bodies, lower-cased usernames and e-mails, PUT as a full replace, and
custom attributes dropped unless the realm's unmanaged-attribute policy keeps them. The official
python-keycloak SDK runs against it in tests. ``app.state.keycloak`` is the realm (seed and
inspect it), ``app.state.faults`` the FaultInjector. Modules: ``realm`` (state), ``search``
(representations, search, paging), ``app`` (routes and ``create_app``).
"""

from accord.emulators.keycloak.app import create_app
from accord.emulators.keycloak.realm import (
    ALL_ROLES,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REALM,
    Realm,
)

__all__ = [
    "ALL_ROLES",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REALM",
    "Realm",
    "create_app",
]
