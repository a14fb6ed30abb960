import json
from pathlib import Path

from hub.core.flows import parse_definition

ROOT = Path(__file__).resolve().parents[1]


def test_every_example_flow_is_valid():
    for path in (ROOT / "examples" / "flows").glob("*.json"):
        parse_definition(json.loads(path.read_text()))


def test_the_demo_flows_hub_dev_publishes_are_the_examples():
    # hub/demo ships in the wheel (hub dev seeds it); examples/ is what people read.
    for name in ("fraud_alert.json", "caller_verification.json"):
        assert (ROOT / "hub/demo" / name).read_text() == (ROOT / "examples/flows" / name).read_text()
