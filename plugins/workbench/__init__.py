"""workbench: the staff web UI, the Workbench (build, test, publish flows) and the Customer Center."""
