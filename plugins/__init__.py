"""Hub's built-in channel plugins, installed as the ``hub_plugins`` package."""
