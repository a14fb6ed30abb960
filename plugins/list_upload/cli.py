"""``hub upload FILE --flow ID --env NAME [--user-column C] --var name=column``: the same service as
``POST /v1/{env}/uploads``, then a progress bar until the workers have started every row."""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

READ_BYTES = 65536
# What a refusal's field means on the command line.
OPTIONS = {
    "cli.flowConfigId": "--flow",
    "cli.userColumn": "--user-column",
    "cli.variable": "--var",
    "cli.metadataColumn": "--metadata-column",
    "query.allowDuplicate": "--allow-duplicate",
}


# Without --user-column, the first header column named so (case, "_", "-" and spaces ignored).
USER_COLUMNS = ("userid", "enduserid", "user", "customerid", "customer", "id")


def guess_user_column(path: Path) -> str | None:
    """The header column that holds the user id, by its name (:data:`USER_COLUMNS`), if any."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error):
        return None  # the upload itself names what is wrong with the file
    by_name = {"".join(c for c in name.lower() if c not in "_- "): name for name in reversed(header)}
    return next((by_name[key] for key in USER_COLUMNS if key in by_name), None)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file a piece at a time (never whole in memory)."""
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, READ_BYTES):
            yield chunk


def register_cli(cli: Any) -> None:
    import typer

    from hub.cli import CliError, run_with_hub
    from hub_plugins.list_upload import service
    from hub_plugins.list_upload.csvstream import UploadRefused
    from hub_plugins.list_upload.receive import parse_mapping, receive_upload

    @cli.command("upload")
    def upload(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The CSV file."),
        flow: str = typer.Option(..., "--flow", help="Flow config id to start for each row."),
        env: str = typer.Option(..., "--env", help="Environment."),
        user_column: str | None = typer.Option(
            None, "--user-column",
            help="Column holding the user id (default: one named userId, user, customerId, customer or id).",
        ),
        var: list[str] = typer.Option([], "--var", help="name=column: a flow variable read from a column."),
        metadata_column: list[str] = typer.Option(
            [], "--metadata-column", help="Column copied into the invocation metadata."
        ),
        allow_duplicate: bool = typer.Option(
            False, "--allow-duplicate", help="Upload a file already uploaded for this flow."
        ),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Show progress until every row started."),
        timeout: float = typer.Option(3600.0, "--timeout", help="Stop waiting after this many seconds."),
    ) -> None:
        """Start a flow for every row of a CSV file, with a progress bar.

        Example: hub upload customers.csv --flow fraud --env demo --user-column id --var amount=Amount
        """
        if user_column is None:
            user_column = guess_user_column(file)
            if user_column is None:
                raise CliError("--user-column: required: no column of the header is named userId, user, "
                               "customerId, customer or id")
        variables = []
        for item in var:
            name, sep, column = item.partition("=")
            if not sep:
                raise CliError(f"--var {item!r}: must be name=column")
            variables.append(f"{name}:{column}")

        async def go(hub: Any) -> dict[str, Any]:
            try:
                mapping = parse_mapping("cli", user_column, variables, metadata_column)
                return await receive_upload(
                    hub,
                    env,
                    flow_id=flow,
                    mapping=mapping,
                    chunks=file_chunks(file),
                    filename=file.name,
                    allow_duplicate=allow_duplicate,
                    source="cli",
                )
            except UploadRefused as exc:
                raise CliError(f"{OPTIONS.get(exc.field, exc.field)}: {exc.reason}") from None

        created = run_with_hub(env, go)
        upload_id = created["uploadId"]
        typer.echo(
            f"upload {upload_id}: {created['rowsValid']:,} valid rows, "
            f"{created['rowsRejected']:,} rejected, queued"
        )
        final = _progress(env, upload_id, created, timeout) if wait else created
        typer.echo(
            f"state {final['state']}: {final['rowsRead']:,} rows read, {final['rowsStarted']:,} "
            f"started, {final['rowsRejected']:,} rejected"
        )
        if final["rowsRejected"]:
            typer.echo(f"error report: GET {final['errorsUrl']}")
        if final["state"] == "failed":
            raise CliError(f"upload {upload_id} failed: {final['error']}")

    def _progress(env: str, upload_id: str, first: dict[str, Any], timeout: float) -> dict[str, Any]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        async def watch(hub: Any) -> dict[str, Any]:
            current = first
            deadline = time.monotonic() + timeout
            with Progress(
                TextColumn("starting rows"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
            ) as bar:
                task = bar.add_task("rows", total=max(1, first["rowsValid"]))
                while current["state"] in ("queued", "running") and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    current = await service.get_upload(hub, env, upload_id)
                    done = current["rowsStarted"] + current["rowsRejected"] - first["rowsRejected"]
                    bar.update(task, completed=done)
            if current["state"] in ("queued", "running"):
                raise CliError(
                    f"upload {upload_id} still {current['state']} after {timeout:g}s "
                    f"({current['rowsStarted']:,} started): is a `hub worker` running?"
                )
            return current

        return run_with_hub(env, watch)
