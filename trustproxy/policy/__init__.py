"""Policy files: schema, loading with line numbers, composition, selection, hot reload."""
