"""SEPM's REST resources as the connector calls them, one module per resource; `SepmClient`
brings them together over one session."""
