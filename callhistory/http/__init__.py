"""The transport: HTTP in front of the domains (dispatch, the FreeSWITCH endpoint, uvicorn's
settings, access logs, OpenAPI)."""
