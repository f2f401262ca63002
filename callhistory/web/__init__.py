"""The call-history web page for tenant staff: static HTML, CSS and a small vanilla script that
calls the same API as every integration."""
