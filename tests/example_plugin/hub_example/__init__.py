"""An example Hub plugin (see ``hooks``)."""
