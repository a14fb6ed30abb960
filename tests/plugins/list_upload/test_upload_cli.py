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
