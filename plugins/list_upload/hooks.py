"""The list_upload plugin's hookimpls."""
