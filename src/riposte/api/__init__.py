"""HTTP edge: one router module per resource."""
