"""Statistics kept as calls are written: per tenant, sums by local day and dimension, and by
local hour."""
