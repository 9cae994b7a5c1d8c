"""The coordinator's REGISTER handling: authenticate, apply to the ``Registrar``, answer.

Given the REGISTER requests the dialog layer hands up (``RequestReceived``), this checks
digest credentials with the coordinator's ``Authenticator`` (when one is set), applies the
request to the sans-IO ``Registrar`` at the clock's ``now`` and answers with the
registrar's outcome; a change of bindings is published as a ``BindingsChanged`` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rvoip_session_core._authenticator import Authenticator
from rvoip_session_core._registrar import BindingsChanged, Registrar
from rvoip_sip_core import Request

__all__ = ["RegistrarService"]

log = logging.getLogger("rvoip_session_core")

Respond = Callable[..., object]


class RegistrarService:
    """Answers REGISTER for a coordinator.

    Args:
        registrar: the binding store.
        authenticator: verifies credentials (None: REGISTER is not authenticated).
        now: the coordinator's clock (monotonic seconds).
        publish: publishes ``BindingsChanged`` events.
    """

    def __init__(
        self,
        registrar: Registrar,
        authenticator: Authenticator | None,
        now: Callable[[], float],
        publish: Callable[[BindingsChanged], None],
    ) -> None:
        self.registrar = registrar
        self._auth = authenticator
        self._now = now
        self._publish = publish
        self.counters: dict[str, int] = {"register_ok": 0, "register_refused": 0}
        """REGISTERs answered 200, and answered otherwise (challenges included)."""

    def handle(self, ref: int, request: Request, respond: Respond) -> bool:
        """Answer ``request`` if it is a REGISTER (True), else leave it (False)."""
        if request.method != "REGISTER":
            return False
        now = self._now()
        user: str | None = None
        auth = self._auth
        if auth is not None:
            # RFC 3261 §10.3 step 3: a registrar SHOULD authenticate the UAC (§22).
            result = auth.check(request, now)
            if not result.proceed:
                self.counters["register_refused"] += 1
                respond(ref, result.status, result.reason, headers=result.headers)
                return True
            user = result.user
        outcome = self.registrar.register(request, now, authenticated_user=user)
        counter = "register_ok" if outcome.status == 200 else "register_refused"
        self.counters[counter] += 1
        respond(ref, outcome.status, outcome.reason, headers=outcome.headers)
        if outcome.changed and outcome.aor is not None:
            self._publish(BindingsChanged(outcome.aor, outcome.bindings))
        return True

    def sweep(self) -> None:
        """Drop lapsed bindings, publishing ``BindingsChanged`` for each AOR that lost one."""
        now = self._now()
        registrar = self.registrar
        for aor in registrar.sweep(now):
            self._publish(BindingsChanged(aor, registrar.bindings(aor, now)))
