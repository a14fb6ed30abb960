"""``hub upload``: the same service as the API, then a progress bar until every row started."""

import asyncio

from tests.plugins.list_upload.conftest import csv_rows
from tests.test_cli import hub_cli


async def test_hub_upload_shows_progress_and_counts_until_done(hub, hub_settings, hub_env, promo, run_jobs,
                                                               tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(csv_rows(30) + "u-x,not-a-number,Shop\n")
    args = ("upload", str(path), "--flow", "promo", "--env", hub_env.id, "--user-column", "customer",
            "--var", "amount=Amount", "--var", "merchant=Shop", "--timeout", "60")
    running = asyncio.create_task(asyncio.to_thread(hub_cli, *args, settings=hub_settings))
    while not running.done():  # the worker the command waits for
        await run_jobs(horizon=0.5)
        await asyncio.sleep(0.2)
    out = (await running).stdout
    assert "30 valid rows, 1 rejected, queued" in out
    assert "30/30" in out  # the progress bar, finished
    assert "state completed: 31 rows read, 30 started, 1 rejected" in out
    assert "/uploads/" in out and "errors.csv" in out

    again = await asyncio.to_thread(hub_cli, *args, settings=hub_settings, check=False)
    assert again.returncode == 1
    assert "--allow-duplicate" in again.stderr and "already uploaded" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


async def test_hub_upload_names_the_option_at_fault(hub, hub_settings, hub_env, promo, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(csv_rows(2))
    result = await asyncio.to_thread(
        hub_cli, "upload", str(path), "--flow", "promo", "--env", hub_env.id, "--user-column", "email",
        "--var", "amount=Amount", "--no-wait", settings=hub_settings, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: --user-column: no column 'email' in the header")


async def test_without_user_column_the_column_named_for_the_user_is_used(hub, hub_settings, hub_env, promo,
                                                                        run_jobs, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(csv_rows(3))  # its header names the user column "customer"
    result = await asyncio.to_thread(
        hub_cli, "upload", str(path), "--flow", "promo", "--env", hub_env.id, "--var", "amount=Amount",
        "--var", "merchant=Shop", "--no-wait", settings=hub_settings)
    assert "3 valid rows, 0 rejected, queued" in result.stdout

    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("who,Amount\nu-1,10\n")
    refused = await asyncio.to_thread(
        hub_cli, "upload", str(unnamed), "--flow", "promo", "--env", hub_env.id, "--var", "amount=Amount",
        "--no-wait", settings=hub_settings, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: --user-column: required: no column of the header is named "
                                      "userId, user, customerId, customer or id")


def test_the_user_column_is_guessed_from_the_header_by_name(tmp_path):
    from hub_plugins.list_upload.cli import guess_user_column

    cases = {"\ufeffUser_ID,Amount\n": "User_ID", "name,Customer Id,id\n": "Customer Id",
             "ID,amount\n": "ID", "email,amount\n": None, "": None}
    for header, expected in cases.items():
        path = tmp_path / "f.csv"
        path.write_text(header, encoding="utf-8")
        assert guess_user_column(path) == expected, header
