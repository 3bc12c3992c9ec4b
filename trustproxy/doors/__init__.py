"""Front doors: one module per wire format (request model with declared field roles, translation
to the canonical request, event codec back, error shape). See ``fields.py`` for the roles."""
