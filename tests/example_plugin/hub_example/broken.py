"""A plugin that fails on import, as one with a missing dependency or setting would."""

raise RuntimeError("hub_example.broken needs EXAMPLE_LICENSE_KEY")
