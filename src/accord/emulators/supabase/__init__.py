"""Supabase Auth (GoTrue) admin API emulator, served like a hosted project: Auth under ``/auth/v1``.

Faithful to ``docs/idp/supabase.md`` (GoTrue ``internal/api/admin.go``, ``errors.go``,
``pagination.go``, ``models/user.go``): the gateway's ``apikey`` check and GoTrue's
Bearer JWT check; admin create → 200 with the full user, caller-chosen ``id``, 422
``email_exists``; admin create skips the password policy, admin update applies it (422
``weak_password``); a duplicate ``id`` or an update to a taken e-mail are bare 500s (unique
violations GoTrue does not handle); delete → 200 ``{}``; list with 1-based ``page``/``per_page``
(empty = default), ``X-Total-Count`` and ``Link``; ``filter`` as GoTrue's unescaped
``LIKE '%x%'`` on e-mail or ``ILIKE`` on ``user_metadata.full_name``. Error bodies follow the
request's ``X-Supabase-Api-Version``. Faults come from the shared ``FaultInjector``
(endpoints ``create_user``, ``get_user``, ``list_users``, ``update_user``, ``delete_user``).
Not emulated: phone OTP, password hashes as input beyond a presence check, keyset pagination
(an experimental GoTrue flag) and sign-in: passwords are not kept at all. Bans
(``ban_duration`` on update, Go duration syntax or ``"none"``) set and lift ``banned_until``.

Modules: ``keys`` (the project's JWTs), ``errors`` (error bodies, fault dialect), ``store``
(``auth.users``), ``params`` (reading requests), ``admin`` (the endpoints and ``create_app``).
"""

from accord.emulators.supabase.admin import GoTrueAdmin, create_app
from accord.emulators.supabase.keys import (
    DEFAULT_ANON_KEY,
    DEFAULT_JWT_SECRET,
    DEFAULT_SERVICE_ROLE_KEY,
    sign_jwt,
    verify_jwt,
)

__all__ = [
    "DEFAULT_ANON_KEY",
    "DEFAULT_JWT_SECRET",
    "DEFAULT_SERVICE_ROLE_KEY",
    "GoTrueAdmin",
    "create_app",
    "sign_jwt",
    "verify_jwt",
]
