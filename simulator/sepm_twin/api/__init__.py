"""HTTP surfaces of the twin: SEPM's REST API per site, and the twin's own control plane."""
