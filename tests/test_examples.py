import json
from pathlib import Path

from hub.core.flows import parse_definition

ROOT = Path(__file__).resolve().parents[1]


def test_every_example_flow_is_valid():
    for path in (ROOT / "examples" / "flows").glob("*.json"):
        parse_definition(json.loads(path.read_text()))


def test_the_demo_flow_hub_dev_publishes_is_the_fraud_alert_example():
    # hub/demo ships in the wheel (hub dev seeds it); examples/ is what people read.
    assert (ROOT / "hub/demo/fraud_alert.json").read_text() == (
        ROOT / "examples/flows/fraud_alert.json").read_text()
