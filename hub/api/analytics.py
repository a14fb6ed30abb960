"""Being written: routes and jobs land here."""
