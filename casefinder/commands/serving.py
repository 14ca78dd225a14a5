"""`casefinder` commands for the serving stage: `serve`, `users add/list/revoke`,
`audit verify/show`, `db import-home`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from casefinder.commands.common import console, fail

if TYPE_CHECKING:
    from serving.users import UserStore

users_app = typer.Typer(help="Service users: bearer tokens mapped to a role (and neighbourhood).")
audit_app = typer.Typer(help="The audit log of access to person-level data.")
db_app = typer.Typer(help="The service's state database (users, sessions, audit log, reviews).")


def _store() -> UserStore:
    from config.settings import load_settings
    from serving.users import UserStore

    return UserStore.of(load_settings())


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (shown in the audit log).")],
    role: Annotated[str, typer.Option("--role", help="data_scientist, team or clinician.")],
    neighbourhood: Annotated[
        str | None,
        typer.Option("--neighbourhood", help="Neighbourhood code (team and clinician roles)."),
    ] = None,
) -> None:
    """Add a user and print their bearer token (shown only this once)."""
    from serving.users import UserError

    if neighbourhood is not None:
        _check_neighbourhood(neighbourhood)
    try:
        user, token = _store().add(name, role, neighbourhood)
    except UserError as exc:
        raise fail(str(exc)) from None
    where = f" for {user.neighbourhood}" if user.neighbourhood else ""
    console.print(f"Added {user.name} ({user.role}{where}). Token (keep it secret, shown once):")
    # Plain print so the token can be captured by scripts without markup.
    print(token)


def _check_neighbourhood(neighbourhood: str) -> None:
    """Refuse a neighbourhood no scored run has, naming those that exist (nothing is checked
    before the first month is scored)."""
    from config.settings import load_settings
    from scoring.store import ScoreStore

    store = ScoreStore(load_settings().score_store)
    known: set[str] = set()
    for month in store.months():
        run_id = store.current_run_id(month)
        if run_id:
            hoods = store.people(run_id, columns=["neighbourhood"])["neighbourhood"]
            known |= set(hoods.dropna().astype(str))
    if known and neighbourhood not in known:
        raise fail(
            f"no scored run has neighbourhood {neighbourhood!r}; the runs have "
            + ", ".join(sorted(known))
        )


@users_app.command("list")
def users_list() -> None:
    """List users (never their tokens)."""
    from casefinder.tables import print_table

    rows = [
        [u.name, u.role, u.neighbourhood or "-", _when(u.created), _when(u.revoked) or "-"]
        for u in _store().users()
    ]
    print_table(console, ["Name", "Role", "Neighbourhood", "Created (UTC)", "Revoked"], rows)


def _when(stamp: str | None) -> str:
    return str(stamp)[:16].replace("T", " ") if stamp else ""


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="User to revoke.")]) -> None:
    """Revoke a user's token; the running service refuses it from the next request."""
    from serving.users import UserError

    try:
        user = _store().revoke(name)
    except UserError as exc:
        raise fail(str(exc)) from None
    console.print(f"Revoked {user.name} at {user.revoked}.")


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", help="A head hash recorded earlier; it must still be there."),
    ] = None,
) -> None:
    """Check the audit log's keyed hash chain. Exit 0 intact, 1 broken."""
    from config.settings import load_settings
    from serving.audit import AuditLog, verify

    log = AuditLog.of(load_settings())
    result = verify(log)
    if not result.ok:
        raise fail(f"the audit log is broken: {result.problem}", code=1)
    if expect_head is not None and expect_head not in {e["hash"] for e in log.entries()}:
        raise fail(f"head {expect_head} is not in the log: entries were removed", code=1)
    console.print(f"Audit log intact: {result.entries} entries.")
    print(f"Head: seq {result.head_seq} hash {result.head_hash}")  # one line, never wrapped


@audit_app.command("show")
def audit_show(
    person: Annotated[
        str | None, typer.Option("--person", help="Entries naming this person.")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Entries by this user.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Entries at or after this date (YYYY-MM-DD, UTC).")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="An action (e.g. api.person) or its prefix (api)."),
    ] = None,
) -> None:
    """Print audit entries as JSON lines: who looked at a person's record and what they did."""
    import json
    from datetime import date

    from config.settings import load_settings
    from serving.audit import AuditLog

    if since is not None:
        try:
            since = date.fromisoformat(since).isoformat()
        except ValueError:
            raise fail("--since must be a date, YYYY-MM-DD") from None
    log = AuditLog.of(load_settings())
    for entry in log.entries(person=person, user=user, since=since, action=action):
        print(json.dumps(entry, separators=(",", ":")))


@db_app.command("import-home")
def db_import_home() -> None:
    """Import the home's users.json and audit.log (made before the database) once."""
    from config.settings import load_settings
    from serving.migrate_home import HomeImportError, import_home

    settings = load_settings()
    try:
        done = import_home(settings)
    except HomeImportError as exc:
        raise fail(str(exc)) from None
    for line in done:
        console.print(line)


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on.")] = None,
) -> None:
    """Run the web service (API and pages) with the champion model from the registry."""
    from config.settings import load_settings

    settings = load_settings()
    host, port = host or settings.serving.host, port or settings.serving.port
    args = bentoml_serve_command(host, port)
    os.environ.pop("MLFLOW_CONFIGURE_LOGGING", None)  # the service logs as MLflow sets it up
    console.print(
        f"Sign in at http://{_url_host(host)}:{port}/ui/login with a token from "
        "`casefinder users add`; the API is described at /docs (data scientists)."
    )
    sys.stdout.flush()
    os.execv(sys.executable, args)


def _url_host(host: str) -> str:
    """The address to type: loopback for a wildcard bind."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def bentoml_serve_command(host: str, port: int) -> list[str]:
    """The `bentoml serve` command line for the service, run with this Python."""
    return [
        sys.executable, "-m", "bentoml", "serve", "serving.service:CaseFinder",
        "--host", host, "--port", str(port),
    ]  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add this stage's commands to `app`."""
    app.command(name="serve")(serve)
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")
