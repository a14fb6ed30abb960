"""List upload: start a flow for every row of a CSV file, with progress and an error report."""
