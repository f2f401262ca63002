"""The shared kit: small modules every layer may use (errors, ids, times, numbers, paging,
wire schemas shared by all methods, sealing, rate limits, settings). The kit imports no
domain, no transport and no storage."""
