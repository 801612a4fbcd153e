"""An Auth0 Management API v2 emulator (Starlette), faithful to ``docs/idp/auth0.md``.

Comments link to that page's headings. Served:

- ``POST /oauth/token``: client-credentials grant, JSON or form body
  (docs/idp/auth0.md#management-api-token).
- ``/api/v2/users`` (list/search, create), ``/api/v2/users/{id}`` (get, patch, delete),
  ``/api/v2/users-by-email``, with Auth0's error bodies (docs/idp/auth0.md#error-bodies).
- ``/api/v2/jobs/users-exports`` and ``/api/v2/jobs/{id}``: the bulk export Auth0 recommends for
  full listings (docs/idp/auth0.md#bulk-user-export); the file (gzipped NDJSON) is served at the
  job's ``location``.
- ``/__faults``: run-time fault control (``accord.emulators.faults``).

Every admin endpoint passes through the ``FaultInjector`` under a name (``token``, ``list_users``,
``create_user``, ``get_user``, ``update_user``, ``delete_user``, ``users_by_email``,
``export_users``, ``get_job``, ``download_export``); creates can be ghosts. Every response carries
``x-ratelimit-*`` headers (docs/idp/auth0.md#rate-limits). Search (``GET /api/v2/users``) sees a
user only ``search_lag_ms`` after its creation (docs/idp/auth0.md#search-is-eventually-consistent);
everything else is immediately consistent.

The app exposes ``app.state.tenant`` (the in-memory ``Auth0Tenant``) and ``app.state.faults``
for tests in the same process. Modules: ``tenant`` (users and tokens), ``query`` (search, paging,
projection), ``export`` (bulk export jobs), ``wire`` (error bodies, fault dialect), ``app``
(routes and ``create_app``).
"""

from accord.emulators.auth0.app import create_app
from accord.emulators.auth0.tenant import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CONNECTION,
    Auth0Tenant,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_CONNECTION",
    "Auth0Tenant",
    "create_app",
]
