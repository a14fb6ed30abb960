"""The by-hand path: apply a flow, trigger it and answer its card from the command line."""

import asyncio
from pathlib import Path

from tests.test_cli import hub_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/flows/fraud_alert.json"
VARIABLES = '{"amount": "$5", "merchant": "Kiosk", "cardLast4": "1111", "paymentId": "p-1"}'


async def cli(*args, settings, check=True):
    return await asyncio.to_thread(hub_cli, *args, settings=settings, check=check)


async def test_trigger_and_answer_a_card_from_the_command_line(hub, hub_settings, hub_env, run_jobs):
    flow_id = (await cli("flows", "apply", str(EXAMPLE), "--env", hub_env.id, "--id", "fraud",
                         settings=hub_settings)).stdout.strip()
    assert flow_id == "fraud"
    invocation = (await cli("trigger", "fraud", "--env", hub_env.id, "--user", "wes",
                            "--variables", VARIABLES, settings=hub_settings)).stdout.strip()
    assert invocation
    await run_jobs()
    listing = (await cli("cards", "list", "--env", hub_env.id, "--user", "wes", settings=hub_settings)).stdout
    card_id, status = listing.split()[:2]
    assert status == "active"
    bad = await cli("cards", "submit", card_id, "--env", hub_env.id, "--values", '{"recognised": "maybe"}',
                    settings=hub_settings, check=False)
    assert bad.returncode == 1 and "values.recognised" in bad.stderr
    await cli("cards", "submit", card_id, "--env", hub_env.id, "--values", '{"recognised": "yes"}',
              settings=hub_settings)
    await run_jobs()
    listing = (await cli("cards", "list", "--env", hub_env.id, "--user", "wes", settings=hub_settings)).stdout
    assert "Thanks for confirming" in listing and "completed" in listing


async def test_trigger_reports_invalid_variables_in_one_line(hub, hub_settings, hub_env):
    await cli("flows", "apply", str(EXAMPLE), "--env", hub_env.id, "--id", "fraud", settings=hub_settings)
    result = await cli("trigger", "fraud", "--env", hub_env.id, "--user", "wes", settings=hub_settings,
                       check=False)
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    assert "flows[0].payload.variables.amount" in result.stderr and "Traceback" not in result.stderr
