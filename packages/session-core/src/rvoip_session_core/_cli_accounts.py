"""Accounts on the command line: ``--user/--password/--realm`` and ``--register``.

``rvoip call`` and ``rvoip answer`` take ``--user``/``--password`` to answer digest
challenges, ``answer`` also ``--register URI`` (the ``register`` command itself is in
``_cli_register``). The password may come from ``RVOIP_PASSWORD`` instead of the command
line (where other users of the machine could read it); it is never printed.
"""

from __future__ import annotations

import argparse
import os

from rvoip_session_core._config import SessionManagerBuilder
from rvoip_session_core._errors import ConfigurationError
from rvoip_session_core._events import RegistrationState, RegistrationStatus

__all__ = [
    "PASSWORD_ENV",
    "add_account_options",
    "apply_accounts",
    "describe_registration",
    "password_of",
]

PASSWORD_ENV = "RVOIP_PASSWORD"
"""Environment variable read when ``--password`` is not given."""


def add_account_options(parser: argparse.ArgumentParser, *, register: bool = False) -> None:
    """``--user``, ``--password``, ``--realm`` (and ``--register URI``, ``--expires``)."""
    parser.add_argument("--user", default=None, help="digest user name (and our SIP user)")
    parser.add_argument(
        "--password",
        default=None,
        help=f"digest password (default: ${PASSWORD_ENV}; the environment keeps it out of ps)",
    )
    parser.add_argument("--realm", default=None, help="realm of the credentials (default: any)")
    if register:
        parser.add_argument(
            "--register", default=None, metavar="URI", help="register with this registrar"
        )
        parser.add_argument(
            "--expires", type=int, default=3600, help="registration expires asked for (s)"
        )


def password_of(args: argparse.Namespace) -> str:
    """``--password``, else ``$RVOIP_PASSWORD``.

    Raises:
        ConfigurationError: neither is given.
    """
    password = getattr(args, "password", None)
    if password is None:
        password = os.environ.get(PASSWORD_ENV)
    if password is None:
        raise ConfigurationError(f"--user needs --password or ${PASSWORD_ENV}")
    return str(password)


def apply_accounts(
    builder: SessionManagerBuilder, args: argparse.Namespace
) -> SessionManagerBuilder:
    """Add the credentials (and registration) the command line asks for to ``builder``.

    Raises:
        ConfigurationError: ``--user`` without a password, ``--register`` without ``--user``.
    """
    user = getattr(args, "user", None)
    registrar = getattr(args, "register", None)
    if user is None:
        if registrar is not None:
            raise ConfigurationError("--register needs --user")
        return builder
    password = password_of(args)
    realm = getattr(args, "realm", None)
    builder = builder.with_local_address(f"sip:{user}@{args.host}")
    builder = builder.with_credentials(user, password, realm)
    if registrar is not None:
        builder = builder.with_registration(
            registrar,
            username=user,
            password=password,
            expires=getattr(args, "expires", 3600),
            realm=realm,
        )
    return builder


def describe_registration(status: RegistrationStatus) -> str:
    """One line for a registration's state (what ``rvoip register`` prints)."""
    if status.state is RegistrationState.Registered:
        return (
            f"registered {status.aor} -> {status.contact} at {status.registrar} "
            f"(expires {status.expires}s)"
        )
    if status.state is RegistrationState.Failed:
        return f"registration of {status.aor} failed: {status.reason} (retrying)"
    if status.state is RegistrationState.Unregistered:
        return f"unregistered {status.aor} ({status.status or 'no answer'})"
    return f"{status.state.value} {status.aor} at {status.registrar}"
