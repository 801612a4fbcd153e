"""The table of flows: every kind of durable operation, and the class that runs it.

The engine and the worker read it through ``Context.flows``; nothing registers itself at
import time. A new flow is one module with a ``Flow`` subclass, and one line here.
"""

from __future__ import annotations

from types import MappingProxyType

from accord.domain.model import OperationKind
from accord.services.acceptance import AcceptInvitation
from accord.services.context import Flow, FlowTable
from accord.services.deprovisioning import Deprovision
from accord.services.offboarding import DeleteOrganization
from accord.services.profile import ChangeProfile
from accord.services.provisioning import CreateUser
from accord.services.registration import Register
from accord.services.suspension import Reactivate, Suspend
from accord.services.webhooks import CreateWebhook


def flow_table() -> FlowTable:
    """Every operation kind with its flow; a kind without one is a bug caught here."""
    flows: tuple[Flow, ...] = (
        CreateUser(),
        Register(),
        Deprovision(),
        AcceptInvitation(),
        DeleteOrganization(),
        ChangeProfile(),
        Suspend(),
        Reactivate(),
        CreateWebhook(),
    )
    table = MappingProxyType({flow.kind: flow for flow in flows})
    missing = set(OperationKind) - set(table)
    assert not missing, f"operation kinds without a flow: {sorted(missing)}"
    return table
